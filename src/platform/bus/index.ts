export { connectBus } from "./connection.js";
export type { Bus, BusCredentials, ConnectBusOptions } from "./connection.js";
export {
  declaredStreamNames,
  ensureTopology,
  kvStreamName,
  objectStreamName,
  PoisonSubjects,
  streamConfigs,
  subjectToken,
} from "./topology.js";
export type {
  KvBucketDeclaration,
  ObjectStoreDeclaration,
  StreamDeclaration,
  TopologyDeclaration,
  TopologyOptions,
  TopologyReport,
} from "./topology.js";
export {
  publish,
  isTransientPublishError,
  permissionDeniedError,
  permissionViolation,
  BUS_TRACER_NAME,
  MessagingAttributes,
} from "./publish.js";
export type { PublishOptions, PublishResult } from "./publish.js";
export { natsHeaderGetter, natsHeaderSetter, injectTraceContext, extractTraceContext } from "./trace-headers.js";
export { startNatsServer, freePort, NATS_INSTALL_HINT } from "./nats-server.js";
export type { NatsServerOptions, NatsServerProcess } from "./nats-server.js";
export { startNatsCluster } from "./nats-cluster.js";
export { describeTopology, peersOf, serversOf } from "./topology-status.js";
export type { AssetStatus, PeerState, ServerState } from "./topology-status.js";
export { isTransientBusError } from "./retry.js";
export type { NatsCluster, NatsClusterNode, NatsClusterOptions } from "./nats-cluster.js";
export {
  consume,
  consumerLag,
  ensureConsumer,
  isRetryableError,
  serverAtLeast,
  waitForLagBelow,
} from "./consumer.js";
export type {
  BusMessage,
  ConsumeOptions,
  ConsumerHandle,
  ConsumerLag,
  ConsumerSpec,
  ConsumerStats,
  MessageHandler,
  PoisonRecord,
  WaitForLagOptions,
} from "./consumer.js";
export { openKv, isKvConflict } from "./kv.js";
export type { KvModifyResult, KvStore, KvValue, OpenKvOptions } from "./kv.js";
export { openObjectStore, sha256Hex } from "./objects.js";
export type { GetObjectOptions, ObjectStoreClient, OpenObjectStoreOptions, StoredObject } from "./objects.js";
