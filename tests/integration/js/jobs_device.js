// A device built on the npm aws-iot-device-sdk `jobs` client, unchanged: it connects over mutual TLS,
// subscribes to its jobs for one operation, starts the job notifications, and prints one JSON line per
// job it is given so that the Python test can follow it. `succeed` or `fail` on stdin finishes the
// current job. Arguments: host port ca cert key thing operation.
'use strict';
const awsIot = require('aws-iot-device-sdk');
const [host, port, caPath, certPath, keyPath, thing, operation] = process.argv.slice(2);

const out = (event, fields) => console.log(JSON.stringify(Object.assign({ event }, fields)));
const jobs = awsIot.jobs({
  host, port: Number(port), caPath, certPath, keyPath, clientId: thing, protocol: 'mqtts',
  keepalive: 30, reconnectPeriod: 0,
});

let current = null;
jobs.on('connect', () => {
  out('connect', {});
  jobs.subscribeToJobs(thing, operation, (err, job) => {
    if (err) return out('error', { error: String(err) });
    current = job;
    out('job', { id: job.id, operation: job.operation, document: job.document, status: job.status.status });
  });
  jobs.startJobNotifications(thing, (err) => {
    if (err) return out('error', { error: String(err) });
    out('notifications_started', {});
  });
});
jobs.on('error', (e) => out('error', { error: String(e) }));
jobs.on('close', () => out('close', {}));

process.stdin.on('data', (d) => {
  for (const cmd of d.toString().split('\n').map((s) => s.trim()).filter(Boolean)) {
    if (cmd === 'quit') { jobs.end(true); process.exit(0); }
    const job = current;
    if (!job) { out('no_job', { cmd }); continue; }
    const done = (err) => out(err ? 'error' : 'updated', { id: job.id, cmd, error: err ? String(err) : undefined });
    if (cmd === 'succeed') job.succeeded({ progress: 'done' }, done);
    if (cmd === 'fail') job.failed({ reason: 'test' }, done);
  }
});
