//! A service's `GET /metrics`, read the way Prometheus reads it (the text exposition format).

use std::collections::BTreeMap;

/// One scrape: each sample by metric name and labels.
pub struct Scrape {
    pub text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    /// Scrapes `url` without any token, as Prometheus does; the answer must be 200.
    pub async fn of(http: &reqwest::Client, url: &str) -> Self {
        let response = http.get(url).send().await.expect("GET /metrics");
        assert_eq!(response.status(), reqwest::StatusCode::OK, "{url}");
        Self::parse(response.text().await.expect("a text body"))
    }

    /// Scrapes until `name` with `labels` reads `expected`, or panics after `timeout`: a
    /// service counts some work only after the effect a test waits for (an email is in the
    /// mailbox before the notifier records it), so a test asserting on such a counter waits.
    pub async fn once_reached(
        http: &reqwest::Client,
        url: &str,
        (name, labels): (&str, &[(&str, &str)]),
        expected: f64,
        timeout: std::time::Duration,
    ) -> Self {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let scrape = Self::of(http, url).await;
            let value = scrape.value(name, labels);
            if value == Some(expected) {
                return scrape;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{url}: {name}{labels:?} is {value:?}, not {expected}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    fn parse(text: String) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("`series value`");
                let (name, labels) = match series.split_once('{') {
                    Some((name, labels)) => (name, labels.trim_end_matches('}')),
                    None => (series, ""),
                };
                let labels = labels
                    .split(',')
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (key, value) = pair.split_once('=').expect("key=\"value\"");
                        (key.to_owned(), value.trim_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels, value.parse().expect("a number"))
            })
            .collect();
        Self { text, samples }
    }

    /// The sum of the samples of `name` whose labels include `labels` (`None`: no such sample).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let matching: Vec<f64> = self
            .samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, value)| *value)
            .collect();
        (!matching.is_empty()).then(|| matching.iter().sum())
    }
}
