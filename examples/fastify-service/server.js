import { buildApp } from "./app.js";

const app = buildApp();
const jwtSecret = process.env["JWT_SECRET"];
if (!jwtSecret) {
  app.log.warn("JWT_SECRET is not set; authenticated routes are disabled");
}

await app.listen({ port: Number(process.env.PORT ?? 3000), host: "0.0.0.0" });
