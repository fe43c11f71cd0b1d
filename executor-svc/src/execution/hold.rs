//! The hold as the executor knows it from billing-svc's replies: how much output it covers, when to report
//! progress so that it is extended in time, and whether a chunk is covered (waiting for billing's reply when it
//! is not yet). BILLING.md, "Holds and the metering stream", says why holds are extended rather than
//! hold the ceiling up front.

use super::sink::Sink;
use crate::metering::{MeterSession, ProgressReply, StreamBroken};

/// The hold as known from billing's answers.
pub(super) struct Hold {
    /// Output tokens the hold covers (cumulative).
    pub(super) covered: u64,
    /// Progress reports sent and not yet answered.
    pub(super) outstanding: u32,
    pub(super) last_reported: u64,
    /// Billing said stop, or the stream broke: the hold will not be extended any more.
    pub(super) cover_is_final: bool,
    /// Billing's `report_at_output_tokens` for the hold as it stands: below it the hold cannot be extended, so no
    /// progress is reported; 0 (a billing-svc that does not say): report every progress interval.
    pub(super) report_at: u64,
}

impl Hold {
    /// Whether to report `output_tokens` now, without waiting for the answer (BILLING.md, "Holds and the
    /// metering stream"): once output reaches billing's `report_at` (one report per extension: an answer that did
    /// not move `report_at` is not asked again before output reaches it), or every `interval` tokens when
    /// billing gave none.
    pub(super) fn report_due(&self, output_tokens: u64, interval: u64) -> bool {
        if self.cover_is_final {
            return false;
        }
        if self.report_at == 0 {
            return output_tokens - self.last_reported >= interval;
        }
        self.outstanding == 0
            && output_tokens >= self.report_at
            && self.last_reported < self.report_at
    }

    pub(super) fn apply(&mut self, reply: Result<ProgressReply, StreamBroken>) {
        match reply {
            Ok(ProgressReply::Extended(extended)) => {
                self.outstanding = self.outstanding.saturating_sub(1);
                self.covered = self.covered.max(extended.covered_output_tokens);
                self.report_at = self.report_at.max(extended.report_at_output_tokens);
            }
            Ok(ProgressReply::Stop(stop)) => {
                self.outstanding = self.outstanding.saturating_sub(1);
                tracing::info!(covered = stop.covered_output_tokens, reason = %stop.reason, "billing answered stop");
                // Output already delivered stays delivered; nothing more is.
                self.covered = stop.covered_output_tokens;
                self.cover_is_final = true;
            }
            Err(broken) => {
                tracing::warn!(%broken, "metering stream broke; output is capped to the current hold");
                self.outstanding = 0;
                self.cover_is_final = true;
            }
        }
    }

    /// Makes sure the hold covers `needed` output tokens, asking billing (and waiting for its answer) when
    /// it does not yet. Generation pauses meanwhile; the provider's chunks wait in the HTTP stream.
    pub(super) async fn cover(
        &mut self,
        session: &mut MeterSession,
        sink: &mut Sink,
        needed: u64,
    ) -> Cover {
        loop {
            if needed <= self.covered {
                return Cover::Covered;
            }
            if self.cover_is_final {
                return Cover::Exhausted;
            }
            if self.outstanding == 0 {
                // Billing already answered for this much output and it is still not covered.
                if self.last_reported >= needed || !session.report_progress(needed) {
                    return Cover::Exhausted;
                }
                self.outstanding += 1;
                self.last_reported = needed;
            }
            tokio::select! {
                () = sink.client_gone() => return Cover::ClientGone,
                reply = session.next_reply() => self.apply(reply),
            }
        }
    }
}

/// Whether the hold covers a chunk.
pub(super) enum Cover {
    Covered,
    Exhausted,
    ClientGone,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_reported_once_output_nears_the_cover_and_once_per_extension() {
        use proto::billing::v1::MeterExtended;
        let extended = |covered, report_at| {
            Ok(ProgressReply::Extended(MeterExtended {
                covered_output_tokens: covered,
                held: "0".into(),
                report_at_output_tokens: report_at,
            }))
        };
        let mut hold = Hold {
            covered: 256,
            outstanding: 0,
            last_reported: 0,
            cover_is_final: false,
            report_at: 128,
        };
        assert!(!hold.report_due(16, 16));
        assert!(!hold.report_due(127, 16));
        assert!(hold.report_due(130, 16));
        (hold.outstanding, hold.last_reported) = (1, 130);
        assert!(!hold.report_due(150, 16), "one report at a time");
        hold.apply(extended(512, 384));
        assert_eq!(
            (hold.covered, hold.report_at, hold.outstanding),
            (512, 384, 0)
        );
        assert!(!hold.report_due(383, 16));
        assert!(hold.report_due(384, 16));
        // An answer that could not extend the hold leaves `report_at`: not asked again until output needs it.
        (hold.outstanding, hold.last_reported) = (1, 400);
        hold.apply(extended(512, 384));
        assert!(!hold.report_due(450, 16));
        // Without `report_at` (an older billing-svc), every interval.
        let mut legacy = Hold {
            report_at: 0,
            last_reported: 0,
            ..hold
        };
        assert!(legacy.report_due(16, 16));
        legacy.last_reported = 16;
        assert!(!legacy.report_due(31, 16));
        legacy.cover_is_final = true;
        assert!(!legacy.report_due(64, 16));
    }
}
