//! What the command-line tools of `src/bin/` (`faults`, `membership`) share: `--name value`
//! options and a `main` that runs an async body on a runtime and turns its error into exit 1.

use std::collections::BTreeMap;
use std::future::Future;
use std::process::ExitCode;

use anyhow::Context as _;

/// `--name value` pairs; a name may repeat, and a value may hold several comma-separated items.
#[derive(Debug, Default)]
pub struct Opts(BTreeMap<String, Vec<String>>);

impl Opts {
    pub fn parse(args: &[String]) -> anyhow::Result<Self> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let name =
                a.strip_prefix("--").with_context(|| format!("expected --option, found {a:?}"))?;
            let v = it.next().with_context(|| format!("--{name} needs a value"))?;
            m.entry(name.to_owned()).or_default().extend(v.split(',').map(str::to_owned));
        }
        Ok(Self(m))
    }

    /// Every value of `--name` (at least one).
    pub fn all(&self, name: &str) -> anyhow::Result<&[String]> {
        self.0
            .get(name)
            .map(Vec::as_slice)
            .filter(|v| !v.is_empty())
            .with_context(|| format!("--{name} is required"))
    }

    /// The value of `--name`, given exactly once.
    pub fn one(&self, name: &str) -> anyhow::Result<&str> {
        match self.all(name)? {
            [v] => Ok(v),
            _ => anyhow::bail!("give --{name} once"),
        }
    }

    /// `--name` as a number, or `default` when absent.
    pub fn num(&self, name: &str, default: u64) -> anyhow::Result<u64> {
        match self.0.get(name).map(Vec::as_slice) {
            Some([v]) => v.parse().with_context(|| format!("--{name} must be a number")),
            Some(_) => anyhow::bail!("give --{name} once"),
            None => Ok(default),
        }
    }
}

/// Runs `body` on a Tokio runtime (`worker_threads` 0: the current thread) and maps its
/// outcome to the process's exit code; an error is printed as `<tool>: <error chain>`.
pub fn run_main<F>(tool: &str, worker_threads: usize, body: F) -> ExitCode
where
    F: Future<Output = anyhow::Result<ExitCode>>,
{
    let built = if worker_threads == 0 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads)
            .enable_all()
            .build()
    };
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{tool}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(body) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{tool}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Opts;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_split_commas_and_repeat() {
        let o = Opts::parse(&args(&["--rpc", "a,b", "--rpc", "c", "--n", "5"])).unwrap();
        assert_eq!(o.all("rpc").unwrap(), ["a", "b", "c"]);
        assert_eq!(o.num("n", 1).unwrap(), 5);
        assert_eq!(o.num("m", 7).unwrap(), 7);
        assert!(o.one("missing").is_err());
        assert!(o.one("rpc").is_err(), "three values are not one");
        assert!(Opts::parse(&args(&["--dangling"])).is_err());
        assert!(Opts::parse(&args(&["--n", "x"])).unwrap().num("n", 1).is_err());
    }
}
