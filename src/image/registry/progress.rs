//! What a pull reports as it goes: status lines and a bar per layer. The command line
//! draws them (cli's terminal progress); the image code only reports.

/// A pull's status lines and layers.
pub trait Progress {
    /// A status line ("latest: Pulling from library/busybox", "Digest: ...").
    fn line(&self, text: &str);
    /// A layer of `total` bytes, named by its short digest.
    fn layer(&self, short: &str, total: u64) -> Box<dyn LayerProgress>;
    /// The pull succeeded (a reporter that held its lines back may show them now).
    fn succeeded(&self) {}
}

/// One layer's download.
pub trait LayerProgress {
    fn set_position(&self, pos: u64);
    fn inc(&self, n: u64);
    /// A passing state ("Downloading", "Verifying").
    fn state(&self, text: &str);
    /// A milestone ("Download complete").
    fn note(&self, text: &str);
    /// The end ("Pull complete", "Already exists").
    fn finish(&self, text: &str);
}
