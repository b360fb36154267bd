// A device built on the npm aws-iot-device-sdk `thingShadow` client, unchanged: it connects over
// mutual TLS, reports its state, obeys deltas by reporting the desired values, and prints one JSON
// line per event so that the Python test can follow it. Arguments: host port ca cert key thing.
'use strict';
const awsIot = require('aws-iot-device-sdk');
const [host, port, caPath, certPath, keyPath, thing] = process.argv.slice(2);

const out = (event, fields) => console.log(JSON.stringify(Object.assign({ event }, fields)));
const shadows = awsIot.thingShadow({
  host, port: Number(port), caPath, certPath, keyPath, clientId: thing, protocol: 'mqtts',
  keepalive: 30, reconnectPeriod: 0,
});

const pending = new Map();  // clientToken -> what the request was
function update(state, why) {
  const token = shadows.update(thing, { state });
  if (token === null) out('update_refused', { why });
  else pending.set(token, why);
}

shadows.on('connect', () => {
  out('connect', {});
  shadows.register(thing, { persistentSubscribe: true }, (err) => {
    if (err) return out('register_failed', { error: String(err) });
    out('registered', {});
    update({ reported: { temp: 20, mode: 'idle' } }, 'initial');
  });
});

shadows.on('status', (name, stat, clientToken, doc) => {
  out('status', { name, stat, why: pending.get(clientToken) || 'get', version: doc.version, state: doc.state,
                  code: doc.code, message: doc.message });
  pending.delete(clientToken);
});

shadows.on('delta', (name, doc) => {
  out('delta', { name, version: doc.version, state: doc.state });
  update({ reported: doc.state }, 'obey');  // the device applies the desired state and reports it
});

shadows.on('error', (e) => out('error', { error: String(e) }));
shadows.on('close', () => out('close', {}));

process.stdin.on('data', (d) => {
  const cmd = d.toString().trim();
  if (cmd === 'get') shadows.get(thing);
  if (cmd === 'quit') { shadows.end(true); process.exit(0); }
});
