//! Each broker killed and restarted under each adapter in turn (one test
//! binary, one test per broker, so that no other test sees the outage and
//! no two adapters share one).

use stomp_suite::adapters::{AsyncStd, Blocking, Smol, Tokio};
use stomp_suite::restart;

#[test]
fn rabbitmq_restart_loses_no_confirmed_message() {
    restart::rabbitmq_restart_loses_no_confirmed_message::<Blocking>();
    restart::rabbitmq_restart_loses_no_confirmed_message::<Tokio>();
    restart::rabbitmq_restart_loses_no_confirmed_message::<AsyncStd>();
    restart::rabbitmq_restart_loses_no_confirmed_message::<Smol>();
}

#[test]
fn activemq_restart_loses_no_confirmed_message() {
    restart::activemq_restart_loses_no_confirmed_message::<Blocking>();
    restart::activemq_restart_loses_no_confirmed_message::<Tokio>();
    restart::activemq_restart_loses_no_confirmed_message::<AsyncStd>();
    restart::activemq_restart_loses_no_confirmed_message::<Smol>();
}
