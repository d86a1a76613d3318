//! The shared scenarios for `stomp-async-std`, on async-std and on smol.

use stomp_suite::adapters::AsyncStd;

stomp_suite::broker_scenarios!(AsyncStd);
stomp_suite::fault_scenarios!(AsyncStd);
stomp_suite::failover_scenarios!(AsyncStd);
stomp_suite::multicast_scenarios!(AsyncStd);
stomp_suite::concurrency_scenarios!(AsyncStd);
stomp_suite::interop_scenarios!(AsyncStd);

mod smol {
    use stomp_suite::adapters::Smol;

    stomp_suite::broker_scenarios!(Smol);
    stomp_suite::fault_scenarios!(Smol);
    stomp_suite::failover_scenarios!(Smol);
    stomp_suite::multicast_scenarios!(Smol);
    stomp_suite::concurrency_scenarios!(Smol);
    stomp_suite::interop_scenarios!(Smol);
}
