//! What the two STM32 boards share: their flash as embassy-boot partitions, the build-time
//! settings, and the receiver's start once the network is up. The board programs
//! (`src/bin/nucleo-*.rs`) add clocks, pins and the tasks.
//!
//! # Build-time settings
//!
//! Read from the environment when the firmware is built (`UFTP_SERVERS=… cargo build …`):
//!
//! - `UFTP_ADDRESS`: a static `A.B.C.D/LEN` (and optional `UFTP_GATEWAY`); DHCP without it.
//! - `UFTP_REQUIRE_ENCRYPTION=1`: refuse unencrypted sessions (uftpd's `-E`).
//! - `UFTP_SERVERS`: `;`-separated server-list lines, `ID|IP[|FINGERPRINT]` (uftpd's `-S`); with
//!   a fingerprint, only that server key is accepted, and so only encrypted sessions from it.

use core::cell::RefCell;

use embassy_boot::{AlignedBuffer, BlockingFirmwareState, FirmwareUpdaterConfig};
use embassy_embedded_hal::flash::partition::BlockingPartition;
use embassy_net::{Ipv4Address, Ipv4Cidr, Stack, StaticConfigV4};
use embassy_stm32::flash::{Blocking, Flash, WRITE_SIZE};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::blocking_mutex::Mutex;
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use static_cell::StaticCell;

use crate::flash_storage::FlashStorage;
use crate::fmt::Ip;
use crate::receive::{
    parse_server, serve, wait_for_address, FirmwareReceiver, NetBuffers, Settings,
};

/// Block-map bytes: 8192 blocks, far more than an image that fits the active partition needs.
pub const BLOCK_MAP: usize = 1024;

/// The chip's flash.
pub type BoardFlash = Flash<'static, Blocking>;
/// A partition of it.
pub type BoardPartition = BlockingPartition<'static, NoopRawMutex, BoardFlash>;
/// The firmware's storage: the DFU partition and embassy-boot's state partition.
pub type BoardStorage = FlashStorage<'static, BoardPartition, BoardPartition, BLOCK_MAP>;

/// The settings this firmware was built with (see the module documentation).
pub fn settings() -> Settings {
    let mut s = Settings {
        require_encryption: option_env!("UFTP_REQUIRE_ENCRYPTION").is_some_and(|v| v == "1"),
        ..Settings::default()
    };
    for line in option_env!("UFTP_SERVERS")
        .unwrap_or("")
        .split(';')
        .filter(|l| !l.trim().is_empty())
    {
        match parse_server(line) {
            Some(entry) if s.servers.push(entry).is_ok() => {}
            _ => defmt::panic!("UFTP_SERVERS: bad or too many entries at {=str}", line),
        }
    }
    s
}

/// The network configuration this firmware was built with: DHCP, or `UFTP_ADDRESS`.
pub fn net_config() -> embassy_net::Config {
    let Some(address) = option_env!("UFTP_ADDRESS") else {
        return embassy_net::Config::dhcpv4(Default::default());
    };
    let parsed = address.split_once('/').and_then(|(ip, len)| {
        let ip: Ipv4Address = ip.parse().ok()?;
        let len: u8 = len.parse().ok().filter(|&l| l <= 32)?;
        Some(Ipv4Cidr::new(ip, len))
    });
    let Some(address) = parsed else {
        defmt::panic!("UFTP_ADDRESS: {=str} is not A.B.C.D/LEN", address)
    };
    let gateway = option_env!("UFTP_GATEWAY").and_then(|g| g.parse().ok());
    embassy_net::Config::ipv4_static(StaticConfigV4 {
        address,
        gateway,
        dns_servers: Default::default(),
    })
}

/// A locally administered MAC address made from the chip's unique ID.
pub fn mac_address() -> [u8; 6] {
    let uid = embassy_stm32::uid::uid();
    let mut mac = [0x02, 0, 0, 0, 0, 0];
    for (i, b) in uid.iter().enumerate() {
        mac[1 + i % 5] ^= *b;
    }
    mac
}

/// The storage over the chip's flash, partitioned as `memory.x` says: the DFU partition for
/// images (at most the active partition's size: embassy-boot's DFU partition is one sector
/// larger) and the bootloader's state partition.
pub fn storage(flash: BoardFlash) -> &'static mut BoardStorage {
    static FLASH: StaticCell<Mutex<NoopRawMutex, RefCell<BoardFlash>>> = StaticCell::new();
    static ALIGNED: StaticCell<AlignedBuffer<WRITE_SIZE>> = StaticCell::new();
    static STORAGE: StaticCell<BoardStorage> = StaticCell::new();
    let flash = FLASH.init(Mutex::new(RefCell::new(flash)));
    let config = FirmwareUpdaterConfig::from_linkerfile_blocking(flash, flash);
    let aligned = ALIGNED.init(AlignedBuffer([0; WRITE_SIZE]));
    let state = BlockingFirmwareState::new(config.state, &mut aligned.0);
    let max_image = (config.dfu.capacity() - BoardFlash::ERASE_SIZE) as u32;
    match FlashStorage::new(config.dfu, state, max_image) {
        Ok(s) => STORAGE.init(s),
        Err(_) => defmt::panic!("memory.x: the DFU partition does not suit the storage"),
    }
}

/// Waits for an address, confirms this firmware to the bootloader (a swapped-in image that
/// gets this far has working Ethernet), then runs the receiver for good.
pub async fn run(stack: Stack<'static>, storage: &'static mut BoardStorage, seed: [u8; 32]) -> ! {
    static SETTINGS: StaticCell<Settings> = StaticCell::new();
    static RECEIVER: StaticCell<FirmwareReceiver> = StaticCell::new();
    static BUFFERS: StaticCell<NetBuffers> = StaticCell::new();
    let settings = SETTINGS.init(settings());
    let addr = wait_for_address(stack).await;
    info!("address {}", Ip(core::net::IpAddr::V4(addr)));
    match storage.boot_state() {
        Some(embassy_boot::State::Boot) => {}
        Some(_) => {
            if storage.confirm_boot().is_err() {
                warn!("cannot mark this firmware booted");
            } else {
                info!("new firmware confirmed");
            }
        }
        None => warn!("cannot read the bootloader state"),
    }
    let config = settings.receiver_config(u32::from(addr), seed);
    let rx = RECEIVER.init_with(|| FirmwareReceiver::new(config));
    let bufs = BUFFERS.init_with(NetBuffers::new);
    let err = serve(stack, settings, rx, storage, bufs).await;
    defmt::panic!("receiver stopped: {}", err)
}
