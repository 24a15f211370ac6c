//! What the user says: stdin lines, Ctrl-C, and when to stop.

use std::pin::Pin;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};

use super::Out;

/// The user's side of the loop: stdin lines until end of input, and
/// Ctrl-C.
pub(crate) struct Input<'a> {
    /// Where the prompt goes, when a person is typing.
    prompt: Option<&'a Out>,
    /// The prompt for the next line is on the screen.
    prompted: bool,
    lines: Option<Lines<BufReader<Stdin>>>,
    interrupt: Pin<Box<dyn Future<Output = ()>>>,
    interrupted: bool,
    /// How long after the end of input the run ends, when it does.
    end_after_eof: Option<Duration>,
    /// Armed at the end of input for `end_after_eof`.
    ending: Linger,
}

/// What the user did.
#[derive(Debug)]
pub(crate) enum UserEvent {
    /// A line (without its line ending).
    Line(String),
    /// Stdin ended (or could not be read).
    Eof,
    /// Ctrl-C.
    Interrupt,
    /// The wait after the end of input passed (see
    /// [`Input::ending_after_eof`]).
    Ended,
}

impl<'a> Input<'a> {
    /// Reads stdin and listens for Ctrl-C; prompts through `out` when a
    /// person is at the terminal.
    pub(crate) fn new(out: &'a Out) -> Input<'a> {
        Input {
            prompt: out.interactive().then_some(out),
            prompted: false,
            lines: Some(BufReader::new(tokio::io::stdin()).lines()),
            interrupt: Box::pin(async {
                if tokio::signal::ctrl_c().await.is_err() {
                    // No signal handling here: Ctrl-C then kills the
                    // process, which is the best left to do.
                    std::future::pending::<()>().await;
                }
            }),
            interrupted: false,
            end_after_eof: None,
            ending: Linger::new(),
        }
    }

    /// Makes the end of input end the run: `wait` later (the `--wait`
    /// linger, during which arrivals still come), [`UserEvent::Ended`].
    /// `None`: the end of input ends nothing.
    pub(crate) fn ending_after_eof(mut self, wait: Option<Duration>) -> Self {
        self.end_after_eof = wait;
        self
    }

    /// Whether stdin has ended.
    pub(crate) fn ended(&self) -> bool {
        self.lines.is_none()
    }

    /// The next thing the user did. Cancel-safe: it is raced against the
    /// connection. Pends forever once stdin ended and Ctrl-C was seen.
    pub(crate) async fn next(&mut self) -> UserEvent {
        if let (Some(out), false, true) = (self.prompt, self.prompted, self.lines.is_some()) {
            out.show_prompt();
            self.prompted = true;
        }
        let Input {
            lines,
            interrupt,
            interrupted,
            prompt,
            prompted,
            end_after_eof,
            ending,
        } = self;
        let seen = *interrupted;
        let interrupt = async {
            if seen {
                std::future::pending::<()>().await;
            }
            interrupt.as_mut().await;
        };
        let read = async {
            match lines.as_mut() {
                Some(lines) => lines.next_line().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = ending.done() => {
                ending.disarm();
                UserEvent::Ended
            }
            () = interrupt => {
                *interrupted = true;
                if let Some(out) = prompt {
                    out.drop_prompt();
                }
                UserEvent::Interrupt
            }
            line = read => {
                *prompted = false;
                match line {
                    Ok(Some(line)) => {
                        if let Some(out) = prompt {
                            out.prompt_answered();
                        }
                        UserEvent::Line(line.trim_end_matches('\r').to_owned())
                    }
                    Ok(None) | Err(_) => {
                        *lines = None;
                        if let Some(wait) = *end_after_eof {
                            ending.arm(wait);
                        }
                        if let Some(out) = prompt {
                            out.drop_prompt();
                        }
                        UserEvent::Eof
                    }
                }
            }
        }
    }
}

/// A sleep that is off until armed: the `--wait` linger after input ends.
pub(crate) struct Linger {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Linger {
    /// Not armed.
    pub(crate) fn new() -> Linger {
        Linger { sleep: None }
    }

    /// Arms it for `after`, unless it already is.
    pub(crate) fn arm(&mut self, after: Duration) {
        if self.sleep.is_none() {
            self.sleep = Some(Box::pin(tokio::time::sleep(after)));
        }
    }

    /// Disarms it (something is pending again).
    pub(crate) fn disarm(&mut self) {
        self.sleep = None;
    }

    /// Completes when the armed time passes; pends while disarmed.
    pub(crate) async fn done(&mut self) {
        match self.sleep.as_mut() {
            Some(sleep) => sleep.as_mut().await,
            None => std::future::pending().await,
        }
    }
}
