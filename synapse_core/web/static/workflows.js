// Dropping a workflow or an image on the page: what it needs, and installing it (when the
// server has the workflows route).
export function setUpDrop() {}
