//! Turning panics into [`FailureDetails`]: every plugin entry point and every poll of user code
//! runs inside [`catch_panic`], so a panicking activity or orchestrator becomes a failure with its
//! message and location, never a crash of the host.
//!
//! Owns the panic hook that records the location. Outside a `catch_panic` scope the hook defers to
//! the hook that was installed before it, so test harnesses and hosts behave as usual.

use crate::failure::{FailureDetails, PANIC};
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;

thread_local! {
    static CATCH_DEPTH: Cell<u32> = const { Cell::new(0) };
    static LAST_PANIC: RefCell<Option<(String, Option<String>)>> = const { RefCell::new(None) };
}

static INSTALL_HOOK: Once = Once::new();

fn install_hook() {
    INSTALL_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            if CATCH_DEPTH.with(Cell::get) == 0 {
                previous(info);
                return;
            }
            let location = info.location().map(|location| {
                format!(
                    "at {}:{}:{}",
                    location.file(),
                    location.line(),
                    location.column()
                )
            });
            LAST_PANIC.with(|last| {
                *last.borrow_mut() = Some((payload_message(info.payload()), location))
            });
        }));
    });
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// Runs `f`, turning a panic into a `Panic` failure with its message and location.
pub(crate) fn catch_panic<R>(f: impl FnOnce() -> R) -> Result<R, FailureDetails> {
    install_hook();
    CATCH_DEPTH.with(|depth| depth.set(depth.get() + 1));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    CATCH_DEPTH.with(|depth| depth.set(depth.get() - 1));
    result.map_err(|payload| {
        let recorded = LAST_PANIC.with(|last| last.borrow_mut().take());
        if let Some(limit) = payload.downcast_ref::<crate::failure::ActionLimitExceeded>() {
            return limit.to_failure();
        }
        let (message, location) =
            recorded.unwrap_or_else(|| (payload_message(payload.as_ref()), None));
        let mut failure = FailureDetails::new(PANIC, message);
        failure.stack_trace = location;
        failure
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_failure_with_message_and_location() {
        let failure = catch_panic(|| -> u32 { panic!("boom {}", 7) }).unwrap_err();
        assert_eq!(failure.error_type, PANIC);
        assert_eq!(failure.error_message, "boom 7");
        assert!(failure.stack_trace.unwrap().contains("panic.rs"));
    }
}
