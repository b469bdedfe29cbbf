// Entry point of a demo app process: `node demo-app-main.js NAME HOST:PORT`, run by sigil-mesh.
// Stops on SIGINT/SIGTERM like the Sigil daemons.
import { untilStopSignal } from '../spiffe/shutdown.js';
import { startDemoApp } from './demo-app.js';

const [name, listen] = process.argv.slice(2);
const match = /^([^:]+):(\d{1,5})$/.exec(listen ?? '');
if (!name || !match) {
  process.stderr.write('usage: demo-app-main NAME HOST:PORT\n');
  process.exit(2);
}
const { server, port } = await startDemoApp({ name, host: match[1]!, port: Number(match[2]) });
process.stdout.write(`${JSON.stringify({ msg: 'Demo app listening', service: name, port })}\n`);
await untilStopSignal();
server.closeAllConnections();
server.close();
