import { app } from "./app.js";

const port = Number(process.env.PORT || 3000);
const logLevel = process.env.LOG_LEVEL || "info";

app.listen(port, "0.0.0.0", () => {
  console.log(JSON.stringify({ level: logLevel, msg: `listening on ${port}` }));
});
