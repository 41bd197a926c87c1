//! hdfs-sys puts libjvm's directory on the rpath of its own targets only, so binaries that depend on it
//! do not find libjvm.so at run time. This script passes that directory on: to this crate's own test
//! binaries, and (as `DEP_HDFSFTPD_FFI_JVM_DIR`) to the daemon's build script. Without the `hdfs`
//! feature there is no JVM and nothing to pass on.
//!
//! It also compiles the JNI code libhdfs lacks (`src/hdfs/jni.c`), with the `jni.h` of the JDK whose
//! libjvm hdfs-sys links (`<java home>/lib/server`), as hdfs-sys compiles libhdfs itself.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_HDFS_METADATA");
    if std::env::var_os("CARGO_FEATURE_HDFS").is_none() {
        return;
    }
    let metadata = std::env::var("DEP_HDFS_METADATA").expect("hdfs-sys exports its JVM_PATH as metadata");
    let jvm_dir = metadata.strip_prefix("JVM_PATH=").expect("hdfs-sys metadata has the form JVM_PATH=<dir>");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{jvm_dir}");
    println!("cargo:jvm_dir={jvm_dir}");

    let java_home = Path::new(jvm_dir).ancestors().nth(2).expect("JVM_PATH is <java home>/lib/server");
    let include = java_home.join("include");
    assert!(include.join("jni.h").exists(), "no jni.h in {} (a JDK is needed to build)", include.display());
    cc::Build::new()
        .file("src/hdfs/jni.c")
        .include(&include)
        .include(include.join("linux"))
        .flag("-std=gnu11")
        .warnings(true)
        .extra_warnings(true)
        .compile("hdfsftpd_jni");
    println!("cargo:rerun-if-changed=src/hdfs/jni.c");
}
