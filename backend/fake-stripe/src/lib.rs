//! A fake Stripe for tests: the PaymentIntents, SetupIntents and refunds of Stripe's API over
//! form-encoded HTTP, answering Stripe's JSON shapes, keeping state, honouring `Idempotency-Key`,
//! signing and sending webhooks, and injecting faults on demand.

mod objects;
mod server;

pub use objects::{Charge, Event, EventObject, PaymentIntent, Refund, SetupIntent};
pub use server::{Delivery, FakeStripe, FakeStripeConfig, Faults, TEST_PAYMENT_METHODS};
