//! Puts libjvm's directory (found by hdfs-sys, passed on by hdfsftpd-ffi) on the binary's rpath, so
//! `target/release/hdfsftpd` runs without LD_LIBRARY_PATH. Without the `hdfs` feature no JVM is linked.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_HDFSFTPD_FFI_JVM_DIR");
    if std::env::var_os("CARGO_FEATURE_HDFS").is_none() {
        return;
    }
    let jvm_dir = std::env::var("DEP_HDFSFTPD_FFI_JVM_DIR").expect("hdfsftpd-ffi exports the JVM directory");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{jvm_dir}");
}
