// Builds the Fastify instance; server.js listens, tests use inject().
import Fastify from "fastify";

export function buildApp() {
  const app = Fastify({ logger: process.env.LOG_LEVEL ? { level: process.env.LOG_LEVEL } : false });

  app.get("/healthz", async () => ({ status: "ok" }));

  app.get("/bookings", async () => ({
    bookings: [],
    database: process.env.DATABASE_URL ? "configured" : "missing",
  }));

  return app;
}
