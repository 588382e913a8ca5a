// Pure echo server on Bun.listen for netkit's TCP benchmark (tests/bench).
//
// The reply is exactly the bytes received. Bun's socket.write is unbuffered: it
// returns how many bytes the kernel took (-1 once the socket is closed), so the
// rest is kept in socket.data, reading pauses, and `drain` writes it when the
// socket is writable again.
//
// Usage: PORT=0 bun echo.js  ->  prints "listening on 127.0.0.1:PORT", then serves.
// With TLS_CERT and TLS_KEY (PEM paths) it serves TLS (Bun.listen's `tls` option).

const hostname = process.env.HOST || "127.0.0.1";

const tls = process.env.TLS_CERT
  ? { cert: Bun.file(process.env.TLS_CERT), key: Bun.file(process.env.TLS_KEY) }
  : undefined;

const server = Bun.listen({
  hostname,
  tls,
  port: Number(process.env.PORT || 0),
  socket: {
    open(socket) {
      socket.data = null; // bytes not yet taken by the kernel, or null
    },
    data(socket, bytes) {
      if (socket.data != null) {
        socket.data = Buffer.concat([socket.data, bytes]);
        return;
      }
      const n = socket.write(bytes);
      if (n >= 0 && n < bytes.length) {
        // `bytes` may be reused by Bun after this call: copy what we keep.
        socket.data = Buffer.from(bytes.subarray(n));
        if (typeof socket.pause === "function") socket.pause();
      }
    },
    drain(socket) {
      const held = socket.data;
      if (held == null) return;
      const n = socket.write(held);
      if (n < 0) return; // closed; close() runs next
      if (n < held.length) {
        socket.data = held.subarray(n);
      } else {
        socket.data = null;
        if (typeof socket.resume === "function") socket.resume();
      }
    },
    error(socket, error) {
      // Resets from the load generator closing are expected; nothing to do.
    },
  },
});

console.log(`listening on ${hostname}:${server.port}`);
