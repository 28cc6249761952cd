// A background job (import, install, update with sync) followed until it is done or failed.
import { api } from "./api.js";
import { bytes, duration, h } from "./dom.js";

const POLL_MS = 250;

// Renders the job into a card that stays in the page; resolves with the finished job.
export function followJob(jobId, { title, onDone } = {}) {
  const bar = h("progress", { max: 1, value: 0, "aria-label": `${title || "job"} progress` });
  const line = h("span", { class: "job-line" }, "queued");
  const state = h("span", { class: "job-state", dataset: { state: "queued" } }, "queued");
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const after = h("div", { class: "job-after" });
  const card = h("section", { class: "job card-box", dataset: { job: jobId } },
    h("header", {}, h("strong", {}, title || "Job"), state), bar, line, error, after);
  const finished = poll();

  async function poll() {
    for (;;) {
      let job;
      try {
        job = await api(`/jobs/${jobId}`);
      } catch (err) {
        show({ state: "failed", progress: { done: 0, total: 0 }, error: { message: err.message } });
        return null;
      }
      show(job);
      if (job.state === "succeeded" || job.state === "failed") {
        if (onDone) onDone(job, after);
        return job;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  function show(job) {
    const p = job.progress;
    const done = job.state === "succeeded";
    state.textContent = done ? "done" : job.state;
    state.dataset.state = done ? "done" : job.state;
    if (p.total) {
      bar.max = p.total;
      bar.value = done ? p.total : p.done;
    } else if (done) {
      bar.max = 1;
      bar.value = 1;
    } else {
      bar.removeAttribute("value");
    }
    const parts = [p.total ? `${bytes(p.done)} of ${bytes(p.total)}` : `${bytes(p.done)}`];
    if (!done && p.bytes_per_second) parts.push(`${bytes(p.bytes_per_second)}/s`);
    if (!done && p.eta_seconds !== null && p.eta_seconds !== undefined && p.total) parts.push(`${duration(p.eta_seconds)} left`);
    if (!done && p.current) parts.push(p.current);
    line.textContent = parts.join(" · ");
    if (job.error) {
      error.textContent = job.error.message;
      error.hidden = false;
    }
  }

  return { card, finished };
}
