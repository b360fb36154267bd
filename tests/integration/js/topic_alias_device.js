// The AWS IoT Device SDK v2's MQTT 5 client (aws-crt) with inbound topic aliasing enabled, as a
// device would configure it: connect (plain TCP, loopback), subscribe to a filter, print one JSON line
// per message received (the topic as the SDK resolved it), then disconnect. Arguments:
// host port clientId filter count
'use strict';
const { mqtt5 } = require('aws-iot-device-sdk-v2');
const [host, port, clientId, filter, count] = process.argv.slice(2);

const client = new mqtt5.Mqtt5Client({
  hostName: host,
  port: Number(port),
  connectProperties: { clientId, keepAliveIntervalSeconds: 60 },
  topicAliasingOptions: { inboundBehavior: mqtt5.InboundTopicAliasBehaviorType.Enabled, inboundCacheMaxSize: 10 },
});
let left = Number(count);
client.on('messageReceived', (e) => {
  console.log(JSON.stringify({ event: 'message', topic: e.message.topicName, payload: Buffer.from(e.message.payload).toString() }));
  if (--left === 0) client.stop();
});
client.on('stopped', () => process.exit(0));
client.on('connectionFailure', (e) => { console.log(JSON.stringify({ event: 'error', error: String(e.error) })); process.exit(2); });
client.on('attemptingConnect', () => {});
client.on('connectionSuccess', async () => {
  await client.subscribe({ subscriptions: [{ topicFilter: filter, qos: mqtt5.QoS.AtLeastOnce }] });
  console.log(JSON.stringify({ event: 'subscribed' }));
});
client.start();
setTimeout(() => { console.log(JSON.stringify({ event: 'error', error: 'timeout' })); process.exit(3); }, 10000);
