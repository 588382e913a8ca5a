// Bun's sendMany as a UDP sender for netkit's UDP benchmark (tests/bench):
// flat out for SECONDS, 64 datagrams of 1,200 bytes per call (Bun's plain
// sendmmsg path), to 127.0.0.1:PORT; prints the datagrams Bun said it sent.
//
// Usage: bun udp_send.mjs PORT SECONDS

const port = Number(process.argv[2]);
const seconds = Number(process.argv[3]);
const sock = await Bun.udpSocket({});
const payload = Buffer.alloc(1200, 0x5a);
const list = [];
for (let i = 0; i < 64; i++) list.push(payload, port, "127.0.0.1");
const end = performance.now() + seconds * 1000;
let sent = 0;
while (performance.now() < end) sent += sock.sendMany(list);
console.log(sent);
sock.close();
