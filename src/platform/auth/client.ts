import { readFileSync } from "node:fs";
import { AutodidactError, Code } from "../errors/index.js";
import type { ClientOptions } from "../rpc/index.js";
import { clientCredentials, type ClientTlsConfig } from "./tls.js";

/** The environment variable the CLI takes the admin token from (before `--admin-token-file`). */
export const ADMIN_TOKEN_ENV = "AUTODIDACT_ADMIN_TOKEN";

/**
 * Reads the bearer token a client sends: `AUTODIDACT_ADMIN_TOKEN` when set, else the first line of
 * `file` (a mounted Secret). Undefined when neither is given. The token never appears in errors.
 */
export function readClientToken(file: string | undefined, env: Record<string, string | undefined> = process.env): string | undefined {
  const fromEnv = env[ADMIN_TOKEN_ENV]?.trim();
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (cause) {
    const why = (cause as NodeJS.ErrnoException).code ?? "unreadable";
    throw new AutodidactError(`--admin-token-file: cannot read ${file} (${why})`, Code.InvalidArgument, { cause });
  }
  const token = text.split(/\r?\n/, 1)[0]!.trim();
  if (token === "") throw new AutodidactError(`--admin-token-file: ${file} is empty`, Code.InvalidArgument);
  return token;
}

/**
 * The {@link ClientOptions} that make a client speak TLS (or mTLS) and authenticate with a bearer
 * token, so the CLI and services dial secured servers the same way. Plain text without a token when
 * nothing is configured.
 */
export function clientSecurity(options: { tls?: ClientTlsConfig; token?: string | undefined }): Pick<ClientOptions, "credentials" | "channelOptions" | "metadata"> {
  const transport = clientCredentials(options.tls ?? {});
  return {
    ...transport,
    ...(options.token !== undefined ? { metadata: { authorization: `Bearer ${options.token}` } } : {}),
  };
}

/** The parsed values of `clientSecurityOptions` (src/platform/config). */
export interface ClientSecurityValues {
  readonly tls?: boolean | undefined;
  readonly tlsCa?: string | undefined;
  readonly tlsCert?: string | undefined;
  readonly tlsKey?: string | undefined;
  readonly tlsServerName?: string | undefined;
  readonly adminTokenFile?: string | undefined;
}

/** {@link clientSecurity} from the CLI's parsed `clientSecurityOptions` and the environment's token. */
export function clientSecurityFromOptions(values: ClientSecurityValues, env: Record<string, string | undefined> = process.env): Pick<ClientOptions, "credentials" | "channelOptions" | "metadata"> {
  return clientSecurity({
    tls: { tls: values.tls, ca: values.tlsCa, cert: values.tlsCert, key: values.tlsKey, serverName: values.tlsServerName },
    token: readClientToken(values.adminTokenFile, env),
  });
}
