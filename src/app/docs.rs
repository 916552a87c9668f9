//! Shell completions and man pages, generated from the clap definition so they never drift from
//! `--help` (clap_complete, clap_mangen).

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use super::UsageError;
use crate::cli::Cli;
use crate::exit::Exit;

/// `smtptls completions SHELL`: the script on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<Exit, UsageError> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "smtptls", &mut std::io::stdout());
    Ok(Exit::Ok)
}

/// `smtptls man`: smtptls.1 on stdout, or every page into `out_dir`.
pub fn man(out_dir: Option<&Path>) -> Result<Exit, UsageError> {
    let command = Cli::command();
    let Some(dir) = out_dir else {
        let mut page = Vec::new();
        render(&command, &mut page)?;
        std::io::stdout()
            .write_all(&page)
            .map_err(|e| UsageError(format!("writing the man page: {e}")))?;
        return Ok(Exit::Ok);
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| UsageError(format!("--out-dir {}: {e}", dir.display())))?;
    write_page(dir, "smtptls.1", &command)?;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("smtptls-{}", sub.get_name());
        let sub = sub.clone().name(name.clone());
        write_page(dir, &format!("{name}.1"), &sub)?;
    }
    Ok(Exit::Ok)
}

fn write_page(dir: &Path, file: &str, command: &clap::Command) -> Result<(), UsageError> {
    let mut page = Vec::new();
    render(command, &mut page)?;
    let path = dir.join(file);
    std::fs::write(&path, page)
        .map_err(|e| UsageError(format!("could not write {}: {e}", path.display())))
}

fn render(command: &clap::Command, out: &mut Vec<u8>) -> Result<(), UsageError> {
    clap_mangen::Man::new(command.clone())
        .render(out)
        .map_err(|e| UsageError(format!("rendering the man page: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_cover_every_subcommand() {
        let dir = tempfile::tempdir().unwrap();
        man(Some(dir.path())).unwrap();
        for page in [
            "smtptls.1",
            "smtptls-get-cert.1",
            "smtptls-test-smtp.1",
            "smtptls-check.1",
        ] {
            let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
            assert!(text.contains(".TH"), "{page} is roff");
        }
        let get_cert = std::fs::read_to_string(dir.path().join("smtptls-get-cert.1")).unwrap();
        assert!(get_cert.contains("chain"), "options are documented");
    }
}
