// Where a local mesh's members keep their own state: inside the mesh's state dir, one folder per member,
// so two meshes (two state dirs) never share a trainer data dir or a registry cache.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DEFAULT_MEMBERS, memberStateArgs } from "./local-mesh.js";

describe("memberStateArgs", () => {
  it("puts the trainer's data dir and every other member's registry cache under <state-dir>/services/<name>", () => {
    const args = Object.fromEntries(DEFAULT_MEMBERS.map((m) => [m.name, memberStateArgs(m, "/s")]));
    expect(args).toEqual({
      generator: ["--cache-dir", join("/s", "services", "generator", "cache")],
      "critic-a": ["--cache-dir", join("/s", "services", "critic-a", "cache")],
      "critic-b": ["--cache-dir", join("/s", "services", "critic-b", "cache")],
      "critic-c": ["--cache-dir", join("/s", "services", "critic-c", "cache")],
      // The trainer's cache defaults to <data-dir>/cache.
      trainer: ["--data-dir", join("/s", "services", "trainer")],
      monitor: ["--cache-dir", join("/s", "services", "monitor", "cache")],
      conductor: ["--cache-dir", join("/s", "services", "conductor", "cache")],
    });
    expect(memberStateArgs({ name: "consensus", kind: "consensus" }, "/s")).toEqual([]);
  });

  it("leaves a folder the member's own flags choose (either spelling)", () => {
    expect(memberStateArgs({ name: "trainer-a", kind: "trainer", args: ["--data-dir", "/d"] }, "/s")).toEqual([]);
    expect(memberStateArgs({ name: "critic-x", kind: "critic", args: ["--cache-dir=/c"] }, "/s")).toEqual([]);
    expect(memberStateArgs({ name: "mon", kind: "monitor", args: ["--lineage", "x"] }, "/s")).toEqual(["--cache-dir", join("/s", "services", "mon", "cache")]);
  });
});
