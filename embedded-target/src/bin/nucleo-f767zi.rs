//! uftp receiver firmware for the NUCLEO-F767ZI: the board's LAN8742A PHY on RMII, DHCP (or
//! `UFTP_ADDRESS` at build time), update images into embassy-boot's DFU partition. See
//! `embedded_target::board` for the build-time settings.
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_net::{Runner, StackResources};
use embassy_stm32::eth::{self, Ethernet, GenericPhy, PacketQueue, Sma};
use embassy_stm32::flash::Flash;
use embassy_stm32::peripherals::{ETH, ETH_SMA};
use embassy_stm32::rng::{self, Rng};
use embassy_stm32::{bind_interrupts, peripherals};
use embedded_target::board::{self, BoardStorage};
use static_cell::StaticCell;
use {defmt_rtt as _, panic_probe as _};

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    RNG => rng::InterruptHandler<peripherals::RNG>;
});

type Device = Ethernet<'static, ETH, GenericPhy<Sma<'static, ETH_SMA>>>;

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Device>) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn receive_task(
    stack: embassy_net::Stack<'static>,
    storage: &'static mut BoardStorage,
    seed: [u8; 32],
) -> ! {
    board::run(stack, storage, seed).await
}

fn clocks() -> embassy_stm32::Config {
    use embassy_stm32::rcc::*;
    use embassy_stm32::time::Hertz;
    let mut config = embassy_stm32::Config::default();
    // 216 MHz from the ST-LINK's 8 MHz clock (HSE bypass); PLL Q gives the RNG its 48 MHz.
    config.rcc.hse = Some(Hse {
        freq: Hertz(8_000_000),
        mode: HseMode::Bypass,
    });
    config.rcc.pll_src = PllSource::HSE;
    config.rcc.pll = Some(Pll {
        prediv: PllPreDiv::DIV4,
        mul: PllMul::MUL216,
        divp: Some(PllPDiv::DIV2),
        divq: Some(PllQDiv::DIV9),
        divr: None,
    });
    config.rcc.ahb_pre = AHBPrescaler::DIV1;
    config.rcc.apb1_pre = APBPrescaler::DIV4;
    config.rcc.apb2_pre = APBPrescaler::DIV2;
    config.rcc.sys = Sysclk::PLL1_P;
    config
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_stm32::init(clocks());
    defmt::info!("uftp-rs firmware, NUCLEO-F767ZI");

    let mut rng = Rng::new(p.RNG, Irqs);
    let mut seed = [0u8; 40];
    rng.fill_bytes(&mut seed);
    let (receiver_seed, stack_seed) = seed.split_at(32);
    let receiver_seed: [u8; 32] = receiver_seed.try_into().unwrap_or([0; 32]);
    let stack_seed = u64::from_le_bytes(stack_seed.try_into().unwrap_or([0; 8]));

    static PACKETS: StaticCell<PacketQueue<4, 4>> = StaticCell::new();
    let device = Ethernet::new(
        PACKETS.init(PacketQueue::<4, 4>::new()),
        p.ETH,
        Irqs,
        p.PA1,
        p.PA7,
        p.PC4,
        p.PC5,
        p.PG13,
        p.PB13,
        p.PG11,
        board::mac_address(),
        p.ETH_SMA,
        p.PA2,
        p.PC1,
    );
    static RESOURCES: StaticCell<StackResources<3>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        board::net_config(),
        RESOURCES.init(StackResources::new()),
        stack_seed,
    );
    let storage = board::storage(Flash::new_blocking(p.FLASH));
    spawner.spawn(defmt::unwrap!(net_task(runner)));
    spawner.spawn(defmt::unwrap!(receive_task(stack, storage, receiver_seed)));
}
