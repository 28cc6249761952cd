// Preferences of this browser (not of the store): the NSFW level shown unblurred.
export const NSFW_LEVELS = [
  ["none", "Safe only"],
  ["soft", "Up to suggestive"],
  ["mature", "Up to mature"],
  ["explicit", "Everything"],
];
const RANK = { none: 0, soft: 1, mature: 2, explicit: 3 };
const KEY = "synapse.nsfw";

export function nsfwSetting() {
  const value = localStorage.getItem(KEY);
  return value in RANK ? value : "soft";
}

export function setNsfwSetting(value) {
  if (value in RANK) localStorage.setItem(KEY, value);
}

// Whether a preview of this rating is blurred at the current setting (unrated counts as safe).
export function blurred(nsfw) {
  return RANK[nsfw || "none"] > RANK[nsfwSetting()];
}
