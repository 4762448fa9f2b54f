fn main() {
    eprintln!("remesa-wallet: not built yet");
    std::process::exit(2);
}
