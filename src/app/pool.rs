//! A bounded pool of plain threads for probing many targets at once, with an optional progress
//! bar on a terminal. Probes block on the network, not the CPU, so threads are the simple answer.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Runs `work` over `items` on at most `concurrency` threads; results come back in the order of
/// `items`. `done` is called as each finishes (from the worker thread).
pub fn run<T: Sync, R: Send>(
    items: &[T],
    concurrency: usize,
    work: impl Fn(&T) -> R + Sync,
    done: impl Fn(&R) + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..concurrency.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result = work(item);
                    done(&result);
                    if let Some(slot) = results.get(i) {
                        *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .filter_map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
        .collect()
}

/// A progress bar on stderr when stderr is a terminal; hidden otherwise (pipes, CI, logs).
pub fn progress(len: usize, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() || len < 2 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} [{elapsed}]") {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}

/// The lines of a targets file ("-": stdin): trimmed, without blanks and `#` comments, each
/// with its line number.
pub fn read_targets(path: &str) -> Result<Vec<(usize, String)>, String> {
    let text = if path == "-" {
        std::io::read_to_string(std::io::stdin().lock()).map_err(|e| format!("--targets -: {e}"))?
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("--targets {path}: {e}"))?
    };
    let targets: Vec<(usize, String)> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            (
                i + 1,
                line.split('#').next().unwrap_or_default().trim().to_owned(),
            )
        })
        .filter(|(_, line)| !line.is_empty())
        .collect();
    if targets.is_empty() {
        return Err(format!("--targets {path}: no targets in it"));
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_order_of_the_items() {
        let items: Vec<u64> = (0..50).collect();
        let seen = AtomicUsize::new(0);
        let out = run(
            &items,
            8,
            |n| {
                std::thread::sleep(std::time::Duration::from_millis(50 - n));
                n * 2
            },
            |_| {
                seen.fetch_add(1, Ordering::Relaxed);
            },
        );
        assert_eq!(out, items.iter().map(|n| n * 2).collect::<Vec<_>>());
        assert_eq!(seen.load(Ordering::Relaxed), 50);
    }

    #[test]
    fn targets_files_skip_blanks_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        std::fs::write(
            &path,
            "# relays\nmx1.example.com:25\n\n  mx2.example.com # backup\n#x\n",
        )
        .unwrap();
        let got = read_targets(path.to_str().unwrap()).unwrap();
        assert_eq!(
            got,
            vec![
                (2, "mx1.example.com:25".to_owned()),
                (4, "mx2.example.com".to_owned())
            ]
        );
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(read_targets(path.to_str().unwrap()).is_err());
    }
}
