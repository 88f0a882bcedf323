//! Placeholder: this service arrives with its own issue; the crate exists so the workspace shows
//! the architecture from the start.
fn main() -> std::process::ExitCode {
    eprintln!("fleet-manager: not built yet");
    std::process::ExitCode::from(2)
}
