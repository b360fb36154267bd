// The AWS IoT Device SDK v2 for JavaScript's fleet provisioning (its `iotidentity` client, as in the
// SDK's fleet_provisioning sample), unchanged: connect over mutual TLS with a claim certificate,
// CreateKeysAndCertificate (or CreateCertificateFromCsr with a CSR file), RegisterThing with the
// template's parameters, and print one JSON line with what it got. Arguments:
// host port ca claimCert claimKey clientId templateName parametersJson [csrFile]
'use strict';
const fs = require('fs');
const { mqtt, iot, iotidentity } = require('aws-iot-device-sdk-v2');
const [host, port, ca, cert, key, clientId, templateName, parameters, csrFile] = process.argv.slice(2);

const fail = (what, e) => {
  console.log(JSON.stringify({ event: 'error', what, error: String(e && (e.message || JSON.stringify(e))) }));
  process.exit(2);
};

async function main() {
  const config = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder_from_path(cert, key)
    .with_certificate_authority_from_path(undefined, ca)
    .with_client_id(clientId).with_endpoint(host).with_port(Number(port))
    .with_clean_session(true).build();
  const connection = new mqtt.MqttClient().new_connection(config);
  await connection.connect();
  const identity = new iotidentity.IotIdentityClient(connection);
  const once = () => { let resolve, reject; const p = new Promise((a, b) => { resolve = a; reject = b; }); return { p, resolve, reject }; };

  const created = once();
  let made;
  if (csrFile) {
    await identity.subscribeToCreateCertificateFromCsrAccepted({}, mqtt.QoS.AtLeastOnce, (e, r) => e ? created.reject(e) : created.resolve(r));
    await identity.subscribeToCreateCertificateFromCsrRejected({}, mqtt.QoS.AtLeastOnce, (e, r) => created.reject(e || r));
    await identity.publishCreateCertificateFromCsr({ certificateSigningRequest: fs.readFileSync(csrFile, 'utf8') }, mqtt.QoS.AtLeastOnce);
  } else {
    await identity.subscribeToCreateKeysAndCertificateAccepted({}, mqtt.QoS.AtLeastOnce, (e, r) => e ? created.reject(e) : created.resolve(r));
    await identity.subscribeToCreateKeysAndCertificateRejected({}, mqtt.QoS.AtLeastOnce, (e, r) => created.reject(e || r));
    await identity.publishCreateKeysAndCertificate({}, mqtt.QoS.AtLeastOnce);
  }
  made = await created.p;

  const registered = once();
  await identity.subscribeToRegisterThingAccepted({ templateName }, mqtt.QoS.AtLeastOnce, (e, r) => e ? registered.reject(e) : registered.resolve(r));
  await identity.subscribeToRegisterThingRejected({ templateName }, mqtt.QoS.AtLeastOnce, (e, r) => registered.reject(e || r));
  await identity.publishRegisterThing({ templateName, certificateOwnershipToken: made.certificateOwnershipToken,
                                        parameters: JSON.parse(parameters) }, mqtt.QoS.AtLeastOnce);
  const thing = await registered.p;
  console.log(JSON.stringify({ event: 'provisioned', certificateId: made.certificateId, certificatePem: made.certificatePem,
                               privateKey: made.privateKey || null, thingName: thing.thingName,
                               deviceConfiguration: thing.deviceConfiguration }));
  await connection.disconnect();
}
main().then(() => process.exit(0), (e) => fail('provisioning', e));
