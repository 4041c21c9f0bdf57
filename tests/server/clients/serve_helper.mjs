// Starts a server process (hearth serve or the scripted test server) on a free loopback port
// and waits until /health says it is ready. Exits 77 (ctest: skipped) when the pinned npm
// packages are not installed (scripts/fetch-server-clients.sh installs them).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

export function requirePackages(names) {
  for (const name of names) {
    if (!existsSync(join(here, "node_modules", name, "package.json"))) {
      console.log(`skipped: npm package '${name}' is not installed (run scripts/fetch-server-clients.sh)`);
      process.exit(77);
    }
  }
}

export async function startServer(command, args) {
  const child = spawn(command, args, { stdio: ["ignore", "inherit", "pipe"] });
  const url = await new Promise((resolve, reject) => {
    let err = "";
    const timer = setTimeout(() => reject(new Error("server did not start: " + err)), 30000);
    child.stderr.on("data", (d) => {
      err += d.toString();
      process.stderr.write(d);
      const m = err.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on("exit", (code) => reject(new Error(`server exited (${code}): ${err}`)));
  });
  for (let i = 0; i < 300; ++i) {
    try {
      const r = await fetch(url + "/health");
      if (r.status === 200) return { url, stop: () => child.kill("SIGTERM"), child };
    } catch (e) { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error("server never became healthy");
}
