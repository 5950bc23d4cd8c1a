import { metrics, type Counter, type Histogram, type MeterProvider } from "@opentelemetry/api";

interface BusInstruments {
  published: Counter;
  consumed: Counter;
  handlerSeconds: Histogram;
}

let cache: { provider: MeterProvider; instruments: BusInstruments } | undefined;

/**
 * The bus's own metrics (publishes, consumer outcomes, handler time), created against whichever
 * meter provider is global right now: setupTelemetry may run after this module was loaded, and
 * the metrics API has no proxy provider, so instruments made earlier would stay no-ops forever.
 */
export function busInstruments(): BusInstruments {
  const provider = metrics.getMeterProvider();
  if (cache?.provider !== provider) {
    const meter = provider.getMeter("autodidact.bus");
    cache = {
      provider,
      instruments: {
        published: meter.createCounter("autodidact.bus.published", {
          description: "JetStream publishes acknowledged, by stream and whether the server dropped them as duplicates",
        }),
        consumed: meter.createCounter("autodidact.bus.consumed", {
          description: "Messages settled by consumers, by stream, durable and outcome (ack, nak, term)",
        }),
        handlerSeconds: meter.createHistogram("autodidact.bus.handler.duration", {
          description: "Time spent in message handlers",
          unit: "s",
        }),
      },
    };
  }
  return cache.instruments;
}
