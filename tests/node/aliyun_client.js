// Calls Pylon with Alibaba's real Node SDK (npm `aliyun-api-gateway`).
//
//   node aliyun_client.js '<json>'
// json: {mode: "call" | "capture", method, url, key, secret, stage, query, data, headers, signHeaders}
//       (with `appCode` instead of key/secret, the SDK's SimpleClient is used)
// "call" sends with the SDK and prints {status, headers, body}.
// "capture" runs the SDK unchanged but stops at its HTTP layer, printing
// {path, headers, body} of the request it would send (so a test can replay
// or tamper with a genuinely SDK-signed request).
'use strict';

const httpx = require('httpx');
const { Client, SimpleClient } = require('aliyun-api-gateway');

const args = JSON.parse(process.argv[2]);

async function main() {
  let captured = null;
  if (args.mode === 'capture') {
    httpx.request = async (parsedUrl, opts) => {
      captured = { path: parsedUrl.path, headers: opts.headers, body: opts.data === undefined || opts.data === null ? '' : String(opts.data) };
      return { statusCode: 200, headers: {} };
    };
    httpx.read = async () => '';
  }
  // "simple" mode: the SDK's AppCode client (`Authorization: APPCODE <code>`).
  const client = args.appCode
    ? new SimpleClient(args.appCode)
    : new Client(args.key, args.secret, args.stage || 'RELEASE');
  const opts = { headers: args.headers || {}, signHeaders: args.signHeaders || {}, query: args.query, data: args.data };
  const method = args.method.toLowerCase();
  try {
    const body = await client[method](args.url, opts);
    if (captured) {
      console.log(JSON.stringify(captured));
    } else {
      console.log(JSON.stringify({ status: 200, body }));
    }
  } catch (err) {
    console.log(JSON.stringify({ status: err.code, headers: (err.data || {}).headers || {}, error: err.message }));
  }
}

main();
