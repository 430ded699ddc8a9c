//! `RUST_LOG` as a filter that takes no lock per span: `Targets` unless the directives need `EnvFilter`.
//!
//! `EnvFilter` keeps a table of the spans its span and field directives match
//! (`eshop[checkout]=debug`, `{order_id}`), behind an `RwLock` that it reads on
//! every span enter, exit, record and close, whether any such directive was
//! given or not; the stdout and OTLP log layers had one each. `Targets`
//! matches by target prefix and level only (with the same precedence: the
//! longest matching target wins), keeps no per-span state and has no hooks on
//! enter or exit. Measured (docs/benchmarks.md, "Where a traced eshop's CPU
//! goes"): about 660 fewer instructions per request, and no CPU difference
//! that two cores can show. A spec with span or field directives (any of
//! `[`, `]`, `{`, `}`) still goes to `EnvFilter`.

use std::str::FromStr as _;

use tracing::{Metadata, Subscriber, span, subscriber::Interest};
use tracing_subscriber::{
    EnvFilter,
    filter::{LevelFilter, Targets},
    layer::{Context, Filter},
    registry::LookupSpan,
};

/// The log layers' filter, built from one `RUST_LOG` spec.
#[derive(Debug)]
pub(crate) enum LogFilter {
    /// Target prefixes and levels: no lock, no per-span state.
    Targets(Box<Targets>),
    /// Span or field directives: `EnvFilter`, with its span table.
    Env(Box<EnvFilter>),
}

impl LogFilter {
    /// Parses `spec` (as in `RUST_LOG`), as `Targets` where it can.
    pub(crate) fn parse(spec: &str) -> Result<Self, tracing_subscriber::filter::ParseError> {
        // Span and field directives (`eshop[checkout]=debug`, `[{order_id}]`)
        // need EnvFilter: Targets' parser would take `eshop[checkout]` for a
        // target and match nothing, without an error.
        if spec.contains(['[', ']', '{', '}']) {
            return Ok(Self::Env(Box::new(EnvFilter::try_new(spec)?)));
        }
        // EnvFilter skips empty directives; Targets would read one as the
        // empty target, which every target starts with, at TRACE.
        let directives: Vec<&str> = spec.split(',').map(str::trim).filter(|d| !d.is_empty()).collect();
        if directives.is_empty() {
            // EnvFilter's default with no directive.
            return Ok(Self::Targets(Box::new(Targets::new().with_default(LevelFilter::ERROR))));
        }
        Ok(Self::Targets(Box::new(Targets::from_str(&directives.join(","))?)))
    }

    /// The same filter with everything from targets starting with `prefix` turned off.
    pub(crate) fn without(self, prefix: &str) -> Result<Self, tracing_subscriber::filter::ParseError> {
        Ok(match self {
            Self::Targets(targets) => Self::Targets(Box::new((*targets).with_target(prefix, LevelFilter::OFF))),
            Self::Env(filter) => Self::Env(Box::new((*filter).add_directive(format!("{prefix}=off").parse()?))),
        })
    }

    /// Whether this spec needed `EnvFilter`.
    #[cfg(test)]
    fn takes_span_locks(&self) -> bool {
        matches!(self, Self::Env(_))
    }
}

impl<S: Subscriber + for<'span> LookupSpan<'span>> Filter<S> for LogFilter {
    // With Targets, the log layers see no span at all: they write events,
    // and find an event's span in the registry itself (`logs::event_span`).
    // The fmt layer would otherwise store an (empty) field string in every
    // span and hear of every enter and exit. EnvFilter's span directives
    // need the spans: its layers keep them.
    fn enabled(&self, metadata: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        match self {
            Self::Targets(_) if metadata.is_span() => false,
            Self::Targets(targets) => Filter::<S>::enabled(targets.as_ref(), metadata, cx),
            Self::Env(filter) => Filter::<S>::enabled(filter.as_ref(), metadata, cx),
        }
    }

    fn callsite_enabled(&self, metadata: &'static Metadata<'static>) -> Interest {
        match self {
            Self::Targets(_) if metadata.is_span() => Interest::never(),
            Self::Targets(targets) => Filter::<S>::callsite_enabled(targets.as_ref(), metadata),
            Self::Env(filter) => Filter::<S>::callsite_enabled(filter.as_ref(), metadata),
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        match self {
            Self::Targets(targets) => Filter::<S>::max_level_hint(targets.as_ref()),
            Self::Env(filter) => Filter::<S>::max_level_hint(filter.as_ref()),
        }
    }

    // Targets keeps no span state: only EnvFilter hears about spans.
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        if let Self::Env(filter) = self {
            Filter::<S>::on_new_span(filter.as_ref(), attrs, id, cx);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
        if let Self::Env(filter) = self {
            Filter::<S>::on_record(filter.as_ref(), id, values, cx);
        }
    }

    fn on_enter(&self, id: &span::Id, cx: Context<'_, S>) {
        if let Self::Env(filter) = self {
            Filter::<S>::on_enter(filter.as_ref(), id, cx);
        }
    }

    fn on_exit(&self, id: &span::Id, cx: Context<'_, S>) {
        if let Self::Env(filter) = self {
            Filter::<S>::on_exit(filter.as_ref(), id, cx);
        }
    }

    fn on_close(&self, id: span::Id, cx: Context<'_, S>) {
        if let Self::Env(filter) = self {
            Filter::<S>::on_close(filter.as_ref(), id, cx);
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::{Layer as _, layer::SubscriberExt as _};

    use super::*;

    /// What a user writes in `RUST_LOG` most days takes no lock per span.
    #[test]
    fn levels_and_targets_need_no_span_table() {
        for spec in [
            "info",
            "warn, eshop=debug",
            "info,messaging::consumer=trace,rdkafka=off,",
            "eshop",
        ] {
            assert!(!LogFilter::parse(spec).expect(spec).takes_span_locks(), "{spec}");
        }
        for spec in [
            "info,eshop[checkout]=debug",
            "[{order_id}]=trace",
            "eshop[{order_id}]=debug",
        ] {
            assert!(LogFilter::parse(spec).expect(spec).takes_span_locks(), "{spec}");
        }
        assert!(LogFilter::parse("info,eshop=loud").is_err());
    }

    /// Both forms decide alike: the longest matching target wins, and
    /// `without` silences a prefix whatever else the spec says.
    #[test]
    fn targets_and_env_filter_let_the_same_lines_through() {
        let spec = "warn,eshop=debug,eshop::noisy=error,";
        let forms = [
            LogFilter::parse(spec),
            EnvFilter::try_new(spec).map(|filter| LogFilter::Env(Box::new(filter))),
        ];
        for form in forms {
            let form = form.and_then(|form| form.without("opentelemetry")).expect("valid");
            let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let layer = Recorder(seen.clone()).with_filter(form);
            tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
                tracing::debug!(target: "eshop::checkout", "through: eshop=debug");
                tracing::warn!(target: "eshop::noisy::inner", "held: eshop::noisy=error is longer");
                tracing::info!(target: "hyper", "held: the default is warn");
                tracing::warn!(target: "hyper", "through");
                tracing::error!(target: "opentelemetry_sdk", "held: without(opentelemetry)");
            });
            let seen = seen.lock().expect("not poisoned").clone();
            assert_eq!(seen, ["eshop::checkout", "hyper"]);
        }
    }

    struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

    impl<S: Subscriber> tracing_subscriber::Layer<S> for Recorder {
        fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            self.0
                .lock()
                .expect("not poisoned")
                .push(event.metadata().target().to_owned());
        }
    }
}
