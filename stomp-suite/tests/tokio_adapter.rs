//! The shared scenarios for `stomp-tokio`, on a multi-threaded runtime and
//! on a current-thread one.

use stomp_suite::adapters::Tokio;

stomp_suite::broker_scenarios!(Tokio);
stomp_suite::fault_scenarios!(Tokio);
stomp_suite::failover_scenarios!(Tokio);
stomp_suite::multicast_scenarios!(Tokio);
stomp_suite::concurrency_scenarios!(Tokio);
stomp_suite::interop_scenarios!(Tokio);

mod current_thread {
    use stomp_suite::adapters::TokioCurrentThread;

    stomp_suite::broker_scenarios!(TokioCurrentThread);
    stomp_suite::fault_scenarios!(TokioCurrentThread);
    stomp_suite::failover_scenarios!(TokioCurrentThread);
    stomp_suite::multicast_scenarios!(TokioCurrentThread);
    stomp_suite::concurrency_scenarios!(TokioCurrentThread);
}
