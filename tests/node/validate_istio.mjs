// Validates Kubernetes resources (a JSON list on stdin) against Istio's
// published CRD schemas, as shipped by @kubernetes-models/istio. Prints one
// line per problem and exits 1 if there is any.
//
// The schemas do not refuse unknown fields (Kubernetes prunes them, and
// `kubectl apply` refuses them), so every field the schema validator never
// looked at is reported as unknown too. Free-form fields (google.protobuf
// .Struct: the WasmPlugin's configuration, an EnvoyFilter's patch) are not
// described by the schemas and are skipped.
import { WasmPlugin } from "@kubernetes-models/istio/extensions.istio.io/v1alpha1/WasmPlugin";
import { DestinationRule } from "@kubernetes-models/istio/networking.istio.io/v1/DestinationRule";
import { Gateway } from "@kubernetes-models/istio/networking.istio.io/v1/Gateway";
import { ServiceEntry } from "@kubernetes-models/istio/networking.istio.io/v1/ServiceEntry";
import { VirtualService } from "@kubernetes-models/istio/networking.istio.io/v1/VirtualService";
import { EnvoyFilter } from "@kubernetes-models/istio/networking.istio.io/v1alpha3/EnvoyFilter";
import { readFileSync } from "node:fs";

const MODELS = [WasmPlugin, DestinationRule, Gateway, ServiceEntry, VirtualService, EnvoyFilter];
const FREE_FORM = [/^\/spec\/pluginConfig$/, /^\/spec\/configPatches\/\d+\/patch\/value$/];

// Wraps `value` so that every property read is recorded in `seen`.
function track(value, path, seen) {
  if (value === null || typeof value !== "object" || FREE_FORM.some((re) => re.test(path))) {
    return value;
  }
  const children = Array.isArray(value) ? [] : {};
  for (const [k, v] of Object.entries(value)) children[k] = track(v, `${path}/${k}`, seen);
  return new Proxy(children, {
    get(target, key, receiver) {
      if (typeof key === "string") seen.add(`${path}/${key}`);
      return Reflect.get(target, key, receiver);
    },
  });
}

function unknown(value, path, seen, out) {
  if (value === null || typeof value !== "object" || FREE_FORM.some((re) => re.test(path))) return;
  for (const [k, v] of Object.entries(value)) {
    const p = `${path}/${k}`;
    if (!Array.isArray(value) && !seen.has(p)) out.push(`${p}: unknown field`);
    else unknown(v, p, seen, out);
  }
}

const docs = JSON.parse(readFileSync(0, "utf8"));
const problems = [];
for (const doc of docs) {
  const where = `${doc.kind}/${doc.metadata?.name}`;
  const Model = MODELS.find((m) => m.apiVersion === doc.apiVersion && m.kind === doc.kind);
  if (!Model) {
    problems.push(`${where}: no schema for ${doc.apiVersion} ${doc.kind}`);
    continue;
  }
  const seen = new Set();
  const { apiVersion, kind, metadata, spec, ...rest } = doc;
  for (const k of Object.keys(rest)) problems.push(`${where}: /${k}: unknown field`);
  // The model copies what it is given; the tracked copies go in after.
  const model = new Model({ apiVersion, kind, metadata, spec });
  model.metadata = track(metadata, "/metadata", seen);
  model.spec = track(spec, "/spec", seen);
  try {
    model.validate();
  } catch (e) {
    problems.push(`${where}: ${e.message}`);
    continue;
  }
  const out = [];
  unknown(metadata, "/metadata", seen, out);
  unknown(spec, "/spec", seen, out);
  for (const p of out) problems.push(`${where}: ${p}`);
}
for (const p of problems) console.log(p);
console.error(`${docs.length} resources, ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
