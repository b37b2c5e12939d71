//! QEMU's MPS2 boards with the SMSC LAN9118 (`mps2-an500`, Cortex-M7; `mps2-an386`,
//! Cortex-M4; one image runs on both): the peripherals the firmware uses, a log on the CMSDK
//! UART, the time driver on SysTick, update images in a RAM flash, and the receiver's start.
//!
//! The memory map is QEMU's (`info mtree` in its monitor): code in the 4 MiB SSRAM at 0, data in
//! the 4 MiB SSRAM at 0x2000_0000, UART0 at 0x4000_4000 (`-serial`), the serial communication
//! controller (SCC) with the board ID at 0x4002_F000, and the LAN9118 at 0x4020_0000 on the
//! AN386 but at 0xA000_0000 on the AN500: the firmware reads the board ID first.
//!
//! # Time
//!
//! SysTick counts QEMU's 1 MHz reference clock (`CLKSOURCE` external), the same on both boards
//! whatever their CPU clock, and interrupts every millisecond: the tick is embassy-time's
//! (1 kHz), the interrupt wakes expired timers and the network task (the LAN9118 driver is
//! polled, see [`crate::lan9118`]).
//!
//! # Entropy
//!
//! The boards have no random number generator. The seed hashes the LAN9118's free-running
//! counter and SysTick's count at points whose timing depends on the host running QEMU: enough
//! to keep two runs apart, nowhere near a secret. This is a test target.

use core::cell::{Cell, RefCell};
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::Waker;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use critical_section::Mutex as CsMutex;
use embassy_boot::BlockingFirmwareState;
use embassy_embedded_hal::flash::partition::BlockingPartition;
use embassy_net::Stack;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::waitqueue::AtomicWaker;
use embassy_time_queue_utils::Queue;
use sha2::{Digest, Sha256};
use static_cell::{ConstStaticCell, StaticCell};

use crate::build_config;
use crate::flash_storage::FlashStorage;
use crate::fmt::Ip;
use crate::lan9118::{self, Lan9118, MulticastFilter};
use crate::mem_flash::MemFlash;
use crate::mmio::Mmio;
use crate::receive::{serve, wait_for_address, FirmwareReceiver, NetBuffers};

/// The LAN9118's registers on the AN385 and AN386.
pub const LAN9118_BASE: usize = 0x4020_0000;
/// The LAN9118's registers on the AN500.
pub const LAN9118_BASE_AN500: usize = 0xA000_0000;
/// CMSDK APB UART0 (QEMU's first `-serial`).
pub const UART0_BASE: usize = 0x4000_4000;
/// The serial communication controller: the board's ID at `SCC_ID`.
pub const SCC_BASE: usize = 0x4002_F000;
const SCC_ID: usize = 0xFFC;
const SCC_LEN: usize = 0x1000;
const UART_LEN: usize = 0x1000;
/// SysTick's reference clock on QEMU's MPS2 boards.
const REFCLK_HZ: u32 = 1_000_000;

/// Write unit and sector of the RAM flash (the STM32H7's write unit, small sectors).
const WRITE_SIZE: usize = 32;
const SECTOR: usize = 4096;
/// embassy-boot's state partition: one sector.
const STATE_LEN: usize = SECTOR;
/// The DFU partition: images of up to 2 MiB.
pub const DFU_LEN: usize = 2 << 20;
/// Block-map bytes: images of up to 8192 blocks.
pub const BLOCK_MAP: usize = 1024;

/// The RAM flash.
pub type RamFlash = MemFlash<'static, WRITE_SIZE, SECTOR>;
/// A partition of it.
pub type RamPartition = BlockingPartition<'static, NoopRawMutex, RamFlash>;
/// The firmware's storage on the RAM flash.
pub type BoardStorage = FlashStorage<'static, RamPartition, RamPartition, BLOCK_MAP>;
/// The network device.
pub type Device = Lan9118<'static, Mmio>;

/// The board, as the SCC's ID register names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Board {
    /// AN385: Cortex-M3 (this image needs an M4 or M7: it does not run there).
    An385,
    /// AN386: Cortex-M4.
    An386,
    /// AN500: Cortex-M7.
    An500,
    /// Another SCC ID.
    Unknown(u32),
}

impl Board {
    fn from_scc_id(id: u32) -> Board {
        // Bits 15:4 are the application note's number, in hex digits.
        match (id >> 4) & 0xFFF {
            0x385 => Board::An385,
            0x386 => Board::An386,
            0x500 => Board::An500,
            _ => Board::Unknown(id),
        }
    }
}

impl core::fmt::Display for Board {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Board::An385 => f.write_str("mps2-an385 (Cortex-M3)"),
            Board::An386 => f.write_str("mps2-an386 (Cortex-M4)"),
            Board::An500 => f.write_str("mps2-an500 (Cortex-M7)"),
            Board::Unknown(id) => write!(f, "an MPS2 board with SCC ID {id:#010x}"),
        }
    }
}

/// The board's peripherals this firmware drives, each handed out once.
#[derive(Debug)]
pub struct Peripherals {
    /// Which board this is.
    pub board: Board,
    /// The Ethernet controller.
    pub lan9118: Mmio,
    /// UART0.
    pub uart0: Mmio,
}

impl Peripherals {
    /// The peripherals, the first time; `None` after that.
    #[allow(unsafe_code)] // Creating the register handles; see the SAFETY notes.
    pub fn take() -> Option<Peripherals> {
        static TAKEN: AtomicBool = AtomicBool::new(false);
        if TAKEN.swap(true, Ordering::AcqRel) {
            return None;
        }
        // SAFETY: the SCC's register block on every MPS2 board (module documentation),
        // word-aligned; this handle lives only for the one read below, and `TAKEN` makes it
        // the only one.
        let mut scc = unsafe { Mmio::new(SCC_BASE, SCC_LEN) };
        let board = Board::from_scc_id(scc.read(SCC_ID));
        let lan9118_base = match board {
            Board::An500 => LAN9118_BASE_AN500,
            _ => LAN9118_BASE,
        };
        // SAFETY: the LAN9118's and UART0's register blocks on this board (module
        // documentation), word-aligned; `TAKEN` makes these the only handles ever made.
        unsafe {
            Some(Peripherals {
                board,
                lan9118: Mmio::new(lan9118_base, lan9118::REGISTER_BLOCK),
                uart0: Mmio::new(UART0_BASE, UART_LEN),
            })
        }
    }
}

/// The CMSDK APB UART, transmit only.
#[derive(Debug)]
pub struct Uart {
    regs: Mmio,
}

impl Uart {
    const DATA: usize = 0x0;
    const STATE: usize = 0x4;
    const CTRL: usize = 0x8;
    const BAUDDIV: usize = 0x10;
    const STATE_TX_FULL: u32 = 1 << 0;
    const CTRL_TX_EN: u32 = 1 << 0;

    /// Enables the transmitter (the smallest divisor the UART takes: QEMU ignores the rate).
    pub fn new(mut regs: Mmio) -> Uart {
        regs.write(Self::BAUDDIV, 16);
        regs.write(Self::CTRL, Self::CTRL_TX_EN);
        Uart { regs }
    }

    fn write_byte(&mut self, b: u8) {
        while self.regs.read(Self::STATE) & Self::STATE_TX_FULL != 0 {}
        self.regs.write(Self::DATA, u32::from(b));
    }
}

impl core::fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(b);
        }
        Ok(())
    }
}

static UART: CsMutex<RefCell<Option<Uart>>> = CsMutex::new(RefCell::new(None));

/// Log lines on the UART: `seconds.millis LEVEL message`.
struct UartLog;

impl log::Log for UartLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ms = embassy_time::Instant::now().as_millis();
        critical_section::with(|cs| {
            if let Some(uart) = UART.borrow(cs).borrow_mut().as_mut() {
                use core::fmt::Write;
                let _ = writeln!(
                    uart,
                    "{}.{:03} {} {}",
                    ms / 1000,
                    ms % 1000,
                    record.level(),
                    record.args()
                );
            }
        });
    }

    fn flush(&self) {}
}

static LOGGER: UartLog = UartLog;

/// Routes the `log` macros to `uart` at `level`.
pub fn init_log(uart: Uart, level: log::LevelFilter) {
    critical_section::with(|cs| *UART.borrow(cs).borrow_mut() = Some(uart));
    // Fails only if a logger is set already: then that one stays.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// Prints a panic on the UART (taking it from a log line the panic interrupted), then asks for
/// a system reset: QEMU run with `-no-reboot` exits, so a test sees the firmware die.
pub fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    critical_section::with(|cs| {
        if let Ok(mut uart) = UART.borrow(cs).try_borrow_mut() {
            if let Some(uart) = uart.as_mut() {
                use core::fmt::Write;
                let _ = writeln!(uart, "firmware panicked: {info}");
            }
        }
    });
    cortex_m::peripheral::SCB::sys_reset()
}

/// The network task's waker, woken on every tick (the driver is polled).
pub static NET_WAKER: AtomicWaker = AtomicWaker::new();

/// embassy-time's driver: a tick count kept by the SysTick interrupt, and the timer queue.
struct SysTickTime {
    ticks: CsMutex<Cell<u64>>,
    alarm: CsMutex<Cell<u64>>,
    queue: CsMutex<RefCell<Queue>>,
}

impl embassy_time_driver::Driver for SysTickTime {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow(cs).borrow_mut();
            if queue.schedule_wake(at, waker) {
                let now = self.ticks.borrow(cs).get();
                self.alarm.borrow(cs).set(queue.next_expiration(now));
            }
        })
    }
}

embassy_time_driver::time_driver_impl!(static TIME: SysTickTime = SysTickTime {
    ticks: CsMutex::new(Cell::new(0)),
    alarm: CsMutex::new(Cell::new(u64::MAX)),
    queue: CsMutex::new(RefCell::new(Queue::new())),
});

/// Starts SysTick: a 1 ms interrupt from the 1 MHz reference clock. The board program's
/// `SysTick` exception handler must call [`on_tick`].
pub fn start_time(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::External);
    syst.set_reload(REFCLK_HZ / 1000 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// SysTick's interrupt: one more millisecond, expired timers woken, the network task polled.
pub fn on_tick() {
    critical_section::with(|cs| {
        let ticks = TIME.ticks.borrow(cs);
        let now = ticks.get() + 1;
        ticks.set(now);
        let alarm = TIME.alarm.borrow(cs);
        if now >= alarm.get() {
            alarm.set(TIME.queue.borrow(cs).borrow_mut().next_expiration(now));
        }
    });
    NET_WAKER.wake();
}

/// The multicast groups the receiver joined, for the LAN9118's hash filter.
pub static MULTICAST: MulticastFilter = MulticastFilter::new();

/// A locally administered MAC address for a chip whose EEPROM holds none (QEMU's always holds
/// one).
const FALLBACK_MAC: [u8; 6] = [0x02, 0x00, 0x75, 0x66, 0x74, 0x70];

/// Brings up the LAN9118 with the address QEMU gave it (`-nic …,mac=`), and returns it with a
/// 40-byte seed (see the module documentation).
pub fn ethernet(regs: Mmio) -> (Device, [u8; 40]) {
    let mut hash = Sha256::new();
    hash.update(SYST::get_current().to_le_bytes());
    let mac = lan9118::MacAddress::Eeprom {
        fallback: Some(FALLBACK_MAC),
    };
    let mut dev = match Lan9118::new(regs, mac, &MULTICAST, &NET_WAKER) {
        Ok(d) => d,
        Err(e) => panic!("LAN9118: {e}"),
    };
    for _ in 0..4 {
        hash.update(dev.free_run().to_le_bytes());
        hash.update(SYST::get_current().to_le_bytes());
    }
    hash.update(dev.mac_address());
    let first: [u8; 32] = hash.finalize_reset().into();
    hash.update(first);
    hash.update(dev.free_run().to_le_bytes());
    let second: [u8; 32] = hash.finalize().into();
    let mut seed = [0u8; 40];
    seed[..32].copy_from_slice(&first);
    seed[32..].copy_from_slice(&second[..8]);
    (dev, seed)
}

/// The storage: embassy-boot's state partition and the DFU partition, in RAM.
pub fn storage() -> &'static mut BoardStorage {
    static BYTES: ConstStaticCell<[u8; STATE_LEN + DFU_LEN]> =
        ConstStaticCell::new([0; STATE_LEN + DFU_LEN]);
    static FLASH: StaticCell<Mutex<NoopRawMutex, RefCell<RamFlash>>> = StaticCell::new();
    static ALIGNED: StaticCell<[u8; WRITE_SIZE]> = StaticCell::new();
    static STORAGE: StaticCell<BoardStorage> = StaticCell::new();
    let Some(flash) = MemFlash::new(BYTES.take()) else {
        panic!("the RAM flash is not whole sectors")
    };
    let flash = FLASH.init(Mutex::new(RefCell::new(flash)));
    let state = BlockingPartition::new(flash, 0, STATE_LEN as u32);
    let dfu = BlockingPartition::new(flash, STATE_LEN as u32, DFU_LEN as u32);
    let state = BlockingFirmwareState::new(state, ALIGNED.init([0; WRITE_SIZE]));
    match FlashStorage::new(dfu, state, DFU_LEN as u32) {
        Ok(s) => STORAGE.init(s),
        Err(e) => panic!("storage: {e}"),
    }
}

/// The network configuration this firmware was built with (`UFTP_ADDRESS`, or DHCP).
pub fn net_config() -> embassy_net::Config {
    match build_config::net_config() {
        Ok(c) => c,
        Err(e) => panic!("{}: bad value {}", e.name, e.value),
    }
}

/// Waits for an address, then runs the receiver for good, multicast through [`MULTICAST`].
pub async fn run(stack: Stack<'static>, storage: &'static mut BoardStorage, seed: [u8; 32]) -> ! {
    static SETTINGS: StaticCell<crate::receive::Settings> = StaticCell::new();
    static RECEIVER: StaticCell<FirmwareReceiver> = StaticCell::new();
    static BUFFERS: StaticCell<NetBuffers> = StaticCell::new();
    let settings = match build_config::settings() {
        Ok(s) => SETTINGS.init(s),
        Err(e) => panic!("{}: bad or too many entries at {}", e.name, e.value),
    };
    let addr = wait_for_address(stack).await;
    log::info!("address {}", Ip(core::net::IpAddr::V4(addr)));
    let config = settings.receiver_config(u32::from(addr), seed);
    let rx = RECEIVER.init_with(|| FirmwareReceiver::new(config));
    let bufs = BUFFERS.init_with(NetBuffers::new);
    let err = serve(stack, settings, rx, storage, bufs, &MULTICAST).await;
    panic!("receiver stopped: {err:?}")
}
