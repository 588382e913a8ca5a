//! Writes a test PKI (rcgen) into a directory, for `cargo xtask demo` and manual
//! tries: `netkit-pki DIR` prints the paths it wrote.

fn main() {
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("netkit-pki"));
    let pki = netkit_tests::pki::Pki::in_dir(&dir);
    println!("ca {}", pki.ca.display());
    println!("cert {}", pki.localhost.cert.display());
    println!("key {}", pki.localhost.key.display());
}
