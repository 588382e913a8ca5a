// The Bun candidate of `cargo xtask bench http`: `bun fetch.mjs URL N CONC`
// fetches URL N times with CONC requests in flight, reading every body
// (streamed and dropped, so a large one never sits in memory whole).
const [url, nArg, concArg] = process.argv.slice(2);
const n = Number(nArg);
const conc = Number(concArg);
let next = 0;
async function worker() {
  while (next < n) {
    next++;
    const r = await fetch(url);
    if (!r.ok) throw new Error(`status ${r.status}`);
    const reader = r.body.getReader();
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
    }
  }
}
await Promise.all(Array.from({ length: conc }, worker));
