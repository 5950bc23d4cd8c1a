import { describe, expect, expectTypeOf, it } from "vitest";
import { AutodidactError, Code } from "../errors/index.js";
import { formatDuration, parseDuration } from "./duration.js";
import { defineOptions } from "./options.js";

const critic = defineOptions(
  {
    grpcPort: { type: "int", help: "gRPC port", default: 50051, min: 0, max: 65535, short: "p" },
    natsUrl: { type: "string", help: "NATS server URL", env: "NATS_URL", default: "nats://127.0.0.1:4222", placeholder: "<url>" },
    threshold: { type: "float", help: "accept threshold", default: 0.5, min: 0, max: 1 },
    method: { type: "enum", values: ["model", "verifier", "length"] as const, help: "judging method", default: "model" },
    ackWait: { type: "duration", help: "NATS ack wait", default: 30_000, min: 100 },
    tasks: { type: "list", help: "tasks to judge", default: ["addition"] },
    dryRun: { type: "bool", help: "do not publish verdicts" },
    model: { type: "string", help: "model path", required: true },
    name: { type: "string", help: "critic name" },
  },
  { envPrefix: "AUTODIDACT_" },
);

function err(fn: () => unknown): AutodidactError {
  try {
    fn();
  } catch (e) {
    if (e instanceof AutodidactError) return e;
    throw e;
  }
  throw new Error("expected an error");
}

describe("defineOptions", () => {
  it("takes argv over env over default and reports the source", () => {
    const r = critic.parse(["--model", "m.onnx", "--threshold=0.7", "--tasks", "a", "--tasks", "b,c", "sub", "--dry-run"], {
      AUTODIDACT_GRPC_PORT: "6000",
      AUTODIDACT_THRESHOLD: "0.9",
      NATS_URL: "nats://nats:4222",
    });
    expect(r.values).toEqual({
      grpcPort: 6000,
      natsUrl: "nats://nats:4222",
      threshold: 0.7,
      method: "model",
      ackWait: 30_000,
      tasks: ["a", "b", "c"],
      dryRun: true,
      model: "m.onnx",
      name: undefined,
    });
    expect(r.sources).toMatchObject({ grpcPort: "env", natsUrl: "env", threshold: "argv", method: "default", name: "unset" });
    expect(r.positionals).toEqual(["sub"]);
    expect(r.help).toBe(false);
  });

  it("types the values from the declarations", () => {
    const { values } = critic.parse(["--model", "x"], {});
    expectTypeOf(values.grpcPort).toEqualTypeOf<number>();
    expectTypeOf(values.method).toEqualTypeOf<"model" | "verifier" | "length">();
    expectTypeOf(values.tasks).toEqualTypeOf<string[]>();
    expectTypeOf(values.dryRun).toEqualTypeOf<boolean>();
    expectTypeOf(values.model).toEqualTypeOf<string>();
    expectTypeOf(values.name).toEqualTypeOf<string | undefined>();
  });

  it("parses short flags, --no-x, --x=false, durations and negative numbers", () => {
    const p = defineOptions({
      offset: { type: "int", help: "offset", min: -10 },
      verbose: { type: "bool", help: "verbose", default: true },
      wait: { type: "duration", help: "wait" },
      port: { type: "int", help: "port", short: "p" },
    });
    expect(p.parse(["--offset", "-3", "--no-verbose", "--wait", "1m30s", "-p8080"], {}).values).toEqual({
      offset: -3,
      verbose: false,
      wait: 90_000,
      port: 8080,
    });
    expect(p.parse(["--verbose=false", "-p", "1"], {}).values.verbose).toBe(false);
    expect(p.parse(["--", "--offset", "1"], {}).positionals).toEqual(["--offset", "1"]);
  });

  it("names the flag, the bad value and what is expected", () => {
    const e1 = err(() => critic.parse(["--model", "m", "--grpc-port", "70000"], {}));
    expect(e1.code).toBe(Code.InvalidArgument);
    expect(e1.message).toContain('invalid value "70000" for --grpc-port: expected an integer between 0 and 65535');

    const e2 = err(() => critic.parse(["--model", "m"], { AUTODIDACT_THRESHOLD: "high" }));
    expect(e2.message).toContain('"high" for --threshold (from environment variable AUTODIDACT_THRESHOLD)');
    expect(e2.message).toContain("a number between 0 and 1");

    const e3 = err(() => critic.parse(["--model", "m", "--method", "vibes"], {}));
    expect(e3.message).toContain("expected one of model, verifier, length");

    const e4 = err(() => critic.parse(["--model", "m", "--ack-wait", "5 parsecs"], {}));
    expect(e4.message).toMatch(/--ack-wait: expected a duration/);

    const e5 = err(() => critic.parse(["--model", "m", "--ack-wait", "50ms"], {}));
    expect(e5.message).toMatch(/>= 100ms/);

    const e6 = err(() => critic.parse(["--model", "m", "--grpc-port", "12.5"], {}));
    expect(e6.message).toContain('"12.5" for --grpc-port');
  });

  it("rejects missing required options, missing values and unknown flags with a suggestion", () => {
    expect(err(() => critic.parse([], {})).message).toContain(
      "missing required option --model (or environment variable AUTODIDACT_MODEL)",
    );
    expect(critic.parse([], { AUTODIDACT_MODEL: "from-env" }).values.model).toBe("from-env");
    expect(err(() => critic.parse(["--model"], {})).message).toContain("option --model needs a value");
    const unknown = err(() => critic.parse(["--model", "m", "--grpc-prot", "1"], {}));
    expect(unknown.code).toBe(Code.InvalidArgument);
    expect(unknown.message).toContain("unknown option --grpc-prot (did you mean --grpc-port?)");
    expect(err(() => critic.parse(["--model", "m", "--dry-run=maybe"], {})).message).toContain("expected true or false");
  });

  it("reports --help without demanding required options", () => {
    const r = critic.parse(["--help"], {});
    expect(r.help).toBe(true);
  });

  it("renders help with types, defaults, env vars and ranges, hiding hidden options", () => {
    const text = defineOptions(
      {
        grpcPort: { type: "int", help: "gRPC port", default: 50051, min: 0, max: 65535, env: "AUTODIDACT_GRPC_PORT" },
        ackWait: { type: "duration", help: "ack wait", default: 90_000 },
        fast: { type: "bool", help: "go fast" },
        secretKnob: { type: "int", help: "internal", hidden: true },
      },
    ).help({ usage: "autodidact critic [options]" });
    expect(text.startsWith("Usage: autodidact critic [options]\n")).toBe(true);
    expect(text).toMatch(/--grpc-port <int>\s+gRPC port \[range: 0\.\.65535; default: 50051; env: AUTODIDACT_GRPC_PORT\]/);
    expect(text).toMatch(/--ack-wait <duration>\s+ack wait \[default: 1m30s\]/);
    expect(text).toContain("--fast, --no-fast");
    expect(text).toContain("-h, --help");
    expect(text).not.toContain("secret-knob");
  });

  it("refuses inconsistent declarations", () => {
    expect(() => defineOptions({ a: { type: "int", help: "", flag: "x" }, b: { type: "int", help: "", flag: "x" } })).toThrow(
      /declared twice/,
    );
    expect(() => defineOptions({ a: { type: "int", help: "", short: "h" } })).toThrow(/short flag/);
  });

  it("validates list items against allowed values", () => {
    const p = defineOptions({ stages: { type: "list", help: "stages", values: ["gen", "critic"] } });
    expect(p.parse(["--stages", "gen,critic"], {}).values.stages).toEqual(["gen", "critic"]);
    expect(err(() => p.parse(["--stages", "gen,trainer"], {})).message).toContain('"trainer" is not allowed');
  });
});

describe("durations", () => {
  it("parses and formats round trips", () => {
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("1.5s")).toBe(1500);
    expect(parseDuration("1h2m3s")).toBe(3_723_000);
    expect(parseDuration("2d")).toBe(172_800_000);
    expect(parseDuration("42")).toBe(42);
    for (const bad of ["", "s", "1x", "1m30", "-1s", "1 m"]) expect(parseDuration(bad), bad).toBeUndefined();
    for (const ms of [1, 999, 1000, 90_000, 3_723_000, 86_400_000 + 1]) expect(parseDuration(formatDuration(ms))).toBe(ms);
  });
});

describe("serviceOptions", () => {
  it("spreads into a service's declarations with types and env names intact", async () => {
    const { serviceOptions } = await import("./common.js");
    const p = defineOptions({ ...serviceOptions, model: { type: "string", help: "model", required: true } });
    const r = p.parse(["--model", "m", "--metrics-port", "0"], {
      NATS_URL: "nats://a:4222,nats://b:4222",
      AUTODIDACT_LOG_LEVEL: "debug",
      AUTODIDACT_SHUTDOWN_TIMEOUT: "5s",
    });
    expect(r.values.natsUrl).toEqual(["nats://a:4222", "nats://b:4222"]);
    expect(r.values.metricsPort).toBe(0);
    expect(r.values.grpcPort).toBe(0);
    expect(r.values.logLevel).toBe("debug");
    expect(r.values.shutdownTimeout).toBe(5_000);
    expectTypeOf(r.values.logLevel).toEqualTypeOf<"debug" | "info" | "warn" | "error" | "silent">();
    expectTypeOf(r.values.natsCreds).toEqualTypeOf<string | undefined>();
    expect(err(() => p.parse(["--model", "m"], { AUTODIDACT_NATS_REPLICAS: "7" })).message).toContain(
      "(from environment variable AUTODIDACT_NATS_REPLICAS): expected an integer between 1 and 5",
    );
  });
});
