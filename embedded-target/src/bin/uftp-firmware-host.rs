//! The firmware's receive task run on Linux: embassy-net on a TAP device (embassy-net-tuntap),
//! update images stored in a file-backed NOR flash with the boards' geometry rules, laid out as
//! embassy-boot partitions: the state partition in the first sector, the DFU partition after it.
//!
//! The TAP device must exist (`ip tuntap add dev NAME mode tap`) and be up and bridged; the
//! address is the firmware's own (smoltcp's), not the kernel's.

use std::cell::RefCell;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use embassy_boot::BlockingFirmwareState;
use embassy_embedded_hal::flash::partition::BlockingPartition;
use embassy_executor::Spawner;
use embassy_net::{Ipv4Cidr, Runner, Stack, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::blocking_mutex::Mutex;
use embedded_target::file_flash::FileFlash;
use embedded_target::flash_storage::FlashStorage;
use embedded_target::receive::{
    parse_server, serve, wait_for_address, AllMulticast, FirmwareReceiver, NetBuffers, Settings,
};
use static_cell::StaticCell;

/// The boards' flash rules: 32-byte write units (the STM32H7's), 4 KiB sectors.
const WRITE_SIZE: usize = 32;
const SECTOR: usize = 4096;
/// The state partition: the flash file's first sector.
const STATE_LEN: u32 = SECTOR as u32;
/// Block map bytes: images of up to 8192 blocks (10 MiB in uftp's 1300-byte blocks).
const MAP: usize = 1024;

type Flash = FileFlash<WRITE_SIZE, SECTOR>;
type Partition = BlockingPartition<'static, NoopRawMutex, Flash>;
type HostStorage = FlashStorage<'static, Partition, Partition, MAP>;

const USAGE: &str = "usage: uftp-firmware-host --tap NAME --address A.B.C.D/LEN --flash FILE
       [--dfu-size BYTES] [--max-image BYTES] [--mac XX:XX:XX:XX:XX:XX]
       [-E] [-S ID|IP[|FINGERPRINT]]... [-v]

The firmware's receiver on a TAP device. The flash FILE holds embassy-boot's state partition
(first 4096 bytes) and the DFU partition (the next --dfu-size bytes, 8 MiB by default), where a
received image is stored from offset 4096 and marked for swap when complete.
  -E   refuse unencrypted sessions
  -S   accept only this server (repeatable; with a fingerprint, only that server key)
  -v   debug logging";

#[derive(Debug)]
struct Options {
    tap: String,
    address: Ipv4Cidr,
    flash: PathBuf,
    dfu_size: u32,
    max_image: u32,
    mac: [u8; 6],
    settings: Settings,
    verbose: bool,
}

fn parse_size(s: &str) -> Option<u32> {
    let (n, mult) = match s.as_bytes().last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 1024),
        b'M' | b'm' => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    n.parse::<u32>().ok()?.checked_mul(mult)
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut args = args.peekable();
    let (mut tap, mut address, mut flash) = (None, None, None);
    let mut dfu_size = 8 << 20;
    let mut max_image = None;
    let mut mac = [0x02, 0x00, 0x75, 0x66, 0x74, 0x70];
    let mut settings = Settings::default();
    let mut verbose = false;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--tap" => tap = Some(value()?),
            "--address" => {
                let v = value()?;
                let (ip, len) = v.split_once('/').ok_or("--address wants A.B.C.D/LEN")?;
                let ip: Ipv4Addr = ip.parse().map_err(|_| format!("bad address {ip}"))?;
                let len: u8 = len
                    .parse()
                    .ok()
                    .filter(|&l| l <= 32)
                    .ok_or(format!("bad prefix length {len}"))?;
                address = Some(Ipv4Cidr::new(ip, len));
            }
            "--flash" => flash = Some(PathBuf::from(value()?)),
            "--dfu-size" => {
                let v = value()?;
                dfu_size = parse_size(&v)
                    .filter(|&n| n > 0 && (n as usize).is_multiple_of(SECTOR))
                    .ok_or(format!("--dfu-size {v}: not a multiple of {SECTOR}"))?;
            }
            "--max-image" => {
                let v = value()?;
                max_image = Some(parse_size(&v).ok_or(format!("bad --max-image {v}"))?);
            }
            "--mac" => {
                let v = value()?;
                let bytes: Vec<u8> = v
                    .split(':')
                    .map(|p| u8::from_str_radix(p, 16))
                    .collect::<Result<_, _>>()
                    .map_err(|_| format!("bad MAC address {v}"))?;
                // A multicast bit in our own address would crash smoltcp.
                mac = <[u8; 6]>::try_from(bytes)
                    .ok()
                    .filter(|m| m[0] & 1 == 0)
                    .ok_or(format!("bad MAC address {v}"))?;
            }
            "-E" => settings.require_encryption = true,
            "-S" => {
                let v = value()?;
                let entry = parse_server(&v).ok_or(format!("bad server entry {v}"))?;
                settings
                    .servers
                    .push(entry)
                    .map_err(|_| "too many -S entries".to_string())?;
            }
            "-v" => verbose = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(Options {
        tap: tap.ok_or("--tap is required")?,
        address: address.ok_or("--address is required")?,
        flash: flash.ok_or("--flash is required")?,
        dfu_size,
        max_image: max_image.unwrap_or(dfu_size),
        mac,
        settings,
        verbose,
    })
}

/// Log lines to standard error, with the time.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let _ = writeln!(
            std::io::stderr(),
            "{}.{:06} {} {}: {}",
            t.as_secs(),
            t.subsec_micros(),
            record.level(),
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {}
}

static LOGGER: StderrLog = StderrLog;

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn receive_task(
    stack: Stack<'static>,
    settings: &'static Settings,
    storage: &'static mut HostStorage,
    seed: [u8; 32],
) {
    static RECEIVER: StaticCell<FirmwareReceiver> = StaticCell::new();
    static BUFFERS: StaticCell<NetBuffers> = StaticCell::new();
    let addr = wait_for_address(stack).await;
    let rx = RECEIVER.init(FirmwareReceiver::new(
        settings.receiver_config(u32::from(addr), seed),
    ));
    let bufs = BUFFERS.init(NetBuffers::new());
    let err = serve(stack, settings, rx, storage, bufs, &AllMulticast).await;
    log::error!("receiver stopped: {err:?}");
    std::process::exit(1);
}

fn setup(spawner: Spawner) -> Result<(), String> {
    let opts = parse_args(std::env::args().skip(1)).map_err(|e| {
        if e.is_empty() {
            USAGE.to_string()
        } else {
            format!("{e}\n{USAGE}")
        }
    })?;
    log::set_logger(&LOGGER).map_err(|e| e.to_string())?;
    log::set_max_level(if opts.verbose {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    });

    let mut seed = [0u8; 40];
    getrandom::fill(&mut seed).map_err(|e| format!("no entropy: {e}"))?;
    let stack_seed = u64::from_le_bytes(seed[32..].try_into().expect("8 bytes"));
    let receiver_seed: [u8; 32] = seed[..32].try_into().expect("32 bytes");

    let mut device = TunTapDevice::new(&opts.tap)
        .map_err(|e| format!("cannot open TAP device {}: {e}", opts.tap))?;
    device.set_hardware_address(opts.mac);
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: opts.address,
        gateway: None,
        dns_servers: Default::default(),
    });
    static RESOURCES: StaticCell<StackResources<2>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        config,
        RESOURCES.init(StackResources::new()),
        stack_seed,
    );

    let flash = Flash::open(&opts.flash, STATE_LEN as usize + opts.dfu_size as usize)
        .map_err(|e| format!("cannot open flash file {}: {e}", opts.flash.display()))?;
    static FLASH: StaticCell<Mutex<NoopRawMutex, RefCell<Flash>>> = StaticCell::new();
    let flash = FLASH.init(Mutex::new(RefCell::new(flash)));
    let state = BlockingPartition::new(flash, 0, STATE_LEN);
    let dfu = BlockingPartition::new(flash, STATE_LEN, opts.dfu_size);
    static ALIGNED: StaticCell<[u8; WRITE_SIZE]> = StaticCell::new();
    let state = BlockingFirmwareState::new(state, ALIGNED.init([0; WRITE_SIZE]));
    let storage = HostStorage::new(dfu, state, opts.max_image).map_err(|e| e.to_string())?;
    static STORAGE: StaticCell<HostStorage> = StaticCell::new();
    let storage = STORAGE.init(storage);

    static SETTINGS: StaticCell<Settings> = StaticCell::new();
    let settings = SETTINGS.init(opts.settings);
    log::info!(
        "uftp-firmware-host on {} as {}, flash {} (state 0..{STATE_LEN}, DFU {STATE_LEN}..{}), \
         images up to {} bytes",
        opts.tap,
        opts.address,
        opts.flash.display(),
        STATE_LEN + opts.dfu_size,
        opts.max_image
    );
    spawner.spawn(net_task(runner).map_err(|e| format!("{e:?}"))?);
    spawner.spawn(
        receive_task(stack, settings, storage, receiver_seed).map_err(|e| format!("{e:?}"))?,
    );
    Ok(())
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    if let Err(e) = setup(spawner) {
        eprintln!("uftp-firmware-host: {e}");
        std::process::exit(2);
    }
}
