// The Bun and node candidates of `cargo xtask bench dns` (per process):
// `bun resolve4.mjs SERVER NAME` prints the A records of NAME as JSON, asking
// SERVER (ip:port) through node:dns's Resolver, like `netkit dns resolve4`.
import { promises as dns } from "node:dns";

const [server, name] = process.argv.slice(2);
const resolver = new dns.Resolver();
resolver.setServers([server]);
console.log(JSON.stringify(await resolver.resolve4(name)));
