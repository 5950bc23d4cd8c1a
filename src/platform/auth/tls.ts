import { ServerCredentials, credentials, type ChannelCredentials, type ChannelOptions } from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { AutodidactError, Code } from "../errors/index.js";

/**
 * TLS material of a gRPC server, as configured by flags or environment. Each value is a PEM file
 * path (a mounted Kubernetes Secret) or the PEM text itself (an environment variable filled from a
 * Secret); see {@link readPem}.
 */
export interface ServerTlsConfig {
  /** Certificate chain the server presents. */
  readonly cert?: string | undefined;
  /** Private key of `cert`. */
  readonly key?: string | undefined;
  /** CA bundle that client certificates must chain to; when set, clients must present one (mTLS). */
  readonly clientCa?: string | undefined;
}

/** TLS material of a gRPC client. */
export interface ClientTlsConfig {
  /** Use TLS even without `ca`/`cert` (trusting the system's roots). */
  readonly tls?: boolean | undefined;
  /** CA bundle the server certificate must chain to (default: the system roots). */
  readonly ca?: string | undefined;
  /** Client certificate chain, for servers that require one (mTLS). */
  readonly cert?: string | undefined;
  /** Private key of `cert`. */
  readonly key?: string | undefined;
  /** Name to check the server certificate against when it differs from the dialled host (an IP, a port-forward). */
  readonly serverName?: string | undefined;
}

const PEM_BEGIN = "-----BEGIN ";

/**
 * Reads PEM from a file path or takes the value as PEM when it starts with `-----BEGIN`, so the
 * same option works with a mounted Secret file and with an environment variable. `what` names the
 * option in errors; the content never appears in them.
 */
export function readPem(value: string, what: string): Buffer {
  if (value.trimStart().startsWith(PEM_BEGIN)) return Buffer.from(value.trim() + "\n");
  let data: Buffer;
  try {
    data = readFileSync(value);
  } catch (cause) {
    const why = (cause as NodeJS.ErrnoException).code ?? "unreadable";
    throw new AutodidactError(`${what}: cannot read ${value} (${why})`, Code.InvalidArgument, { cause });
  }
  if (!data.toString("latin1").includes(PEM_BEGIN)) {
    throw new AutodidactError(`${what}: ${value} holds no PEM block (expected "-----BEGIN ...")`, Code.InvalidArgument);
  }
  return data;
}

/** Whether a server config asks for TLS at all. */
export function serverTlsEnabled(config: ServerTlsConfig): boolean {
  return config.cert !== undefined || config.key !== undefined || config.clientCa !== undefined;
}

/**
 * Server transport credentials from the config: undefined (plain text, the local default) when no
 * TLS option is set; TLS when a certificate and key are; TLS requiring verified client
 * certificates when `clientCa` is set too. A half-set config is an error, never a silent downgrade.
 */
export function serverCredentials(config: ServerTlsConfig): ServerCredentials | undefined {
  if (!serverTlsEnabled(config)) return undefined;
  if (config.cert === undefined || config.key === undefined) {
    throw new AutodidactError("gRPC TLS needs both --tls-cert and --tls-key (--tls-client-ca alone cannot serve TLS)", Code.InvalidArgument);
  }
  const pair = { cert_chain: readPem(config.cert, "--tls-cert"), private_key: readPem(config.key, "--tls-key") };
  const clientCa = config.clientCa !== undefined ? readPem(config.clientCa, "--tls-client-ca") : null;
  try {
    return ServerCredentials.createSsl(clientCa, [pair], clientCa !== null);
  } catch (cause) {
    throw new AutodidactError(`gRPC TLS: certificate, key or client CA is not usable: ${(cause as Error).message}`, Code.InvalidArgument, { cause });
  }
}

/** Whether a client config asks for TLS. */
export function clientTlsEnabled(config: ClientTlsConfig): boolean {
  return config.tls === true || config.ca !== undefined || config.cert !== undefined || config.key !== undefined;
}

/**
 * Client transport credentials and channel options from the config: undefined credentials (plain
 * text) when TLS is not asked for. `serverName` overrides the name checked in the server
 * certificate and sent as SNI/authority.
 */
export function clientCredentials(config: ClientTlsConfig): { credentials?: ChannelCredentials; channelOptions?: ChannelOptions } {
  if (!clientTlsEnabled(config)) {
    if (config.serverName !== undefined) throw new AutodidactError("--tls-server-name only applies with TLS (set --tls-ca or --tls)", Code.InvalidArgument);
    return {};
  }
  if ((config.cert === undefined) !== (config.key === undefined)) {
    throw new AutodidactError("a gRPC client certificate needs both --tls-cert and --tls-key", Code.InvalidArgument);
  }
  const ca = config.ca !== undefined ? readPem(config.ca, "--tls-ca") : null;
  const key = config.key !== undefined ? readPem(config.key, "--tls-key") : null;
  const cert = config.cert !== undefined ? readPem(config.cert, "--tls-cert") : null;
  let creds: ChannelCredentials;
  try {
    creds = credentials.createSsl(ca, key, cert);
  } catch (cause) {
    throw new AutodidactError(`gRPC TLS: CA, certificate or key is not usable: ${(cause as Error).message}`, Code.InvalidArgument, { cause });
  }
  return {
    credentials: creds,
    ...(config.serverName !== undefined
      ? { channelOptions: { "grpc.ssl_target_name_override": config.serverName, "grpc.default_authority": config.serverName } }
      : {}),
  };
}
