import { Classifier, healthCheck, publicKeysFromBase64, Updater } from "@edgeloop/edge";
import { IndexedDbStore } from "@edgeloop/edge/browser";
import { OnnxWebRuntime } from "@edgeloop/edge/onnx-web";

const runtime = new OnnxWebRuntime({ wasmPaths: "/ort/" }); // onnxruntime-web's .wasm, served by your site
const store = await IndexedDbStore.open();
const updater = new Updater({
  registryUrl: "https://registry.example", // its EDGELOOP_REGISTRY_CORS_ORIGINS lists your origin
  model: "shelf-products",
  apiKey: "elk_…", // role: device
  publicKeys: publicKeysFromBase64({ "3f9c2a1b7d4e5f60": "base64 of the key from GET /v1/keys" }),
  store,
  device: { deviceId: "web-5f2c9a", platform: "web" },
  healthCheck: healthCheck(runtime),
});
await updater.checkNow(); // verified, stored, health-checked, swapped in one IndexedDB transaction
const current = await updater.current();
const file = current && (await store.getModel(current.sha256));
if (current && file) {
  const classifier = await Classifier.load(runtime, file, current);
  const canvas = new OffscreenCanvas(640, 480); // draw a camera frame into it (sample_app/web/kiosk.ts does)
  const { data, width, height } = canvas.getContext("2d")!.getImageData(0, 0, 640, 480);
  console.log(await classifier.classify({ data, width, height, channels: 4 }, 1)); // [["lavender-soap", 0.97]]
}
