// The dashboard: polls /api/state once a second and shows it. Module
// output is untrusted: it only ever reaches the page through textContent.
"use strict";
const token = document.querySelector('meta[name="bgjob-token"]').content;

async function refresh() {
  try {
    const response = await fetch("/api/state", { cache: "no-store" });
    const state = await response.json();
    document.getElementById("summary").textContent =
      `version ${state.version}, up ${state.uptime_secs} s`;
    document.getElementById("state").textContent = JSON.stringify(state, null, 2);
  } catch (error) {
    document.getElementById("summary").textContent = `unreachable: ${error}`;
  }
}

refresh();
setInterval(refresh, 1000);
