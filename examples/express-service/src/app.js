// The Express application, without listening: tests mount it on an ephemeral port.
import express from "express";

const products = [{ id: 1, name: "kettle" }];

export const app = express();
app.disable("x-powered-by");

app.get("/health", (_req, res) => {
  res.json({ status: "ok" });
});

app.get("/products", (req, res) => {
  if (req.get("authorization") !== `Bearer ${process.env.API_TOKEN ?? ""}`) {
    return res.status(401).json({ error: "unauthorized" });
  }
  return res.json({ products });
});
