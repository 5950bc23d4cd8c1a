import { execFileSync } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AutodidactError, Code } from "../errors/index.js";

/** Paths of a throw-away PKI made for one test run (nothing of it is ever committed). */
export interface TestCertificates {
  readonly dir: string;
  /** CA that signed the server and client certificates. */
  readonly caCert: string;
  /** Server certificate for `localhost` and 127.0.0.1, and its key. */
  readonly serverCert: string;
  readonly serverKey: string;
  /** Client certificate (common name `name`) of every requested name, and its key. */
  clientCert(name: string): string;
  clientKey(name: string): string;
  /** A CA the servers do not trust, and a client certificate it signed (common name "intruder"). */
  readonly otherCaCert: string;
  readonly intruderCert: string;
  readonly intruderKey: string;
}

function openssl(args: readonly string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
  } catch (cause) {
    const stderr = (cause as { stderr?: Buffer }).stderr?.toString() ?? "";
    throw new AutodidactError(`openssl ${args[0]} failed (is the openssl CLI installed?): ${stderr.trim() || String(cause)}`, Code.FailedPrecondition, { cause });
  }
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/**
 * Makes a CA, a server certificate and client certificates with the openssl CLI in a new temp
 * folder, for TLS and mTLS tests. EC P-256 keys keep it fast; certificates are valid for a day.
 */
export async function createTestCertificates(clientNames: readonly string[]): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), "autodidact-pki-"));
  const ca = (name: string, cn: string): void =>
    openssl(["req", "-x509", ...EC, "-keyout", `${name}.key`, "-out", `${name}.crt`, "-subj", `/CN=${cn}`, "-days", "1",
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], dir);
  const leaf = (name: string, cn: string, signer: string, ext: string): void => {
    openssl(["req", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`], dir);
    openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${signer}.crt`, "-CAkey", `${signer}.key`, "-CAcreateserial", "-out", `${name}.crt`, "-days", "1", "-extfile", ext], dir);
  };
  await writeFile(join(dir, "server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n");
  await writeFile(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n");
  ca("ca", "autodidact test ca");
  ca("other-ca", "untrusted test ca");
  leaf("server", "localhost", "ca", "server.ext");
  for (const name of clientNames) leaf(`client-${name}`, name, "ca", "client.ext");
  leaf("intruder", "intruder", "other-ca", "client.ext");
  const p = (f: string): string => join(dir, f);
  return {
    dir,
    caCert: p("ca.crt"),
    serverCert: p("server.crt"),
    serverKey: p("server.key"),
    clientCert: (name) => p(`client-${name}.crt`),
    clientKey: (name) => p(`client-${name}.key`),
    otherCaCert: p("other-ca.crt"),
    intruderCert: p("intruder.crt"),
    intruderKey: p("intruder.key"),
  };
}
