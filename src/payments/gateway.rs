//! Every call patronage makes to Stripe, through the async-stripe client.
//! Each create call carries an idempotency key derived from our own record,
//! so a retried call returns the object the first one made.

use std::collections::HashMap;

use stripe::Client;
use stripe_billing::{
    billing_portal_session::CreateBillingPortalSession,
    invoice_payment::{ListInvoicePayment, ListInvoicePaymentStatus},
    subscription::{
        CancelSubscription, CreateSubscription, CreateSubscriptionItems, ListSubscription,
        ListSubscriptionStatus, RetrieveSubscription, UpdateSubscription,
    },
};
use stripe_client_core::{
    IdempotencyKey, RequestBuilder, RequestStrategy, StripeMethod, StripeRequest,
};
use stripe_core::{
    customer::CreateCustomer,
    refund::{CreateRefund, ListRefund},
};
use stripe_product::{
    price::{
        CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, ListPrice, UpdatePrice,
    },
    product::{CreateProduct, RetrieveProduct},
};
use stripe_shared::{PaymentIntent, Price, Refund, Subscription};

use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionLineItemsPriceDataRecurring,
    CreateCheckoutSessionLineItemsPriceDataRecurringInterval,
    CreateCheckoutSessionPaymentIntentData, CreateCheckoutSessionSubscriptionData, ProductData,
};
use stripe_shared::CheckoutSessionMode;

use crate::{
    config::StripeSettings,
    domain::{money::Currency, tier::Interval},
    error::{Error, Result},
};

/// The Stripe API version every request and webhook is read as. async-stripe
/// pins it; upgrade the crates together and re-run the contract tests.
pub const STRIPE_API_VERSION: &str = "2026-09-30.endive";

#[derive(Clone)]
pub struct Gateway {
    client: Client,
}

fn upstream(e: stripe::StripeError) -> Error {
    Error::provider_from(e)
}

fn idempotent(key: &str) -> Result<RequestStrategy> {
    let key = IdempotencyKey::new(key).map_err(Error::internal_from)?;
    Ok(RequestStrategy::Idempotent(key))
}

pub fn stripe_currency(c: Currency) -> Result<stripe_types::Currency> {
    c.code()
        .to_ascii_lowercase()
        .parse()
        .map_err(|_| Error::internal(format!("Stripe does not know currency {c}")))
}

/// A paid charge: its id and the fee Stripe kept.
#[derive(Debug, Clone)]
pub struct ChargeFee {
    pub charge_id: String,
    /// `None` while the charge has no balance transaction yet: the fee is
    /// not known, which is not the same as no fee.
    pub fee_minor: Option<i64>,
}

impl Gateway {
    /// `None` when no secret key is configured: payments are then off.
    pub fn from_settings(settings: &StripeSettings) -> Result<Option<Self>> {
        use secrecy::ExposeSecret;
        let key = settings.secret_key.expose_secret();
        if key.is_empty() {
            return Ok(None);
        }
        let client = stripe::ClientBuilder::new(key)
            .url(settings.api_base.clone())
            .timeout(std::time::Duration::from_secs(20))
            .app_info(
                "patronage",
                Some(env!("CARGO_PKG_VERSION").to_owned()),
                None,
            )
            .build()
            .map_err(|e| Error::Config(format!("stripe: {e}")))?;
        Ok(Some(Gateway { client }))
    }

    /// Creates (or finds again) the product for a tier. Its id is ours, so a
    /// second replica creating it at the same moment gets the same product.
    pub async fn ensure_product(
        &self,
        product_id: &str,
        name: &str,
        tier_id: i64,
    ) -> Result<String> {
        let metadata = HashMap::from([("patronage_tier_id".to_owned(), tier_id.to_string())]);
        let created = CreateProduct::new(name)
            .id(product_id)
            .metadata(metadata)
            .customize()
            .request_strategy(idempotent(&format!("product-{product_id}"))?)
            .send(&self.client)
            .await;
        match created {
            Ok(product) => Ok(product.id.to_string()),
            // Made earlier (another replica, or before a restart): use it.
            Err(create_error) => match RetrieveProduct::new(product_id).send(&self.client).await {
                Ok(existing) => Ok(existing.id.to_string()),
                Err(_) => Err(upstream(create_error)),
            },
        }
    }

    pub async fn find_price(&self, lookup_key: &str) -> Result<Option<Price>> {
        let list = ListPrice::new()
            .lookup_keys(vec![lookup_key.to_owned()])
            .send(&self.client)
            .await
            .map_err(upstream)?;
        Ok(list.data.into_iter().next())
    }

    pub async fn create_price(
        &self,
        product_id: &str,
        lookup_key: &str,
        amount_minor: i64,
        currency: Currency,
        interval: Interval,
    ) -> Result<Price> {
        let interval = match interval {
            Interval::Month => CreatePriceRecurringInterval::Month,
            Interval::Year => CreatePriceRecurringInterval::Year,
        };
        CreatePrice::new(stripe_currency(currency)?)
            .product(product_id)
            .unit_amount(amount_minor)
            .recurring(CreatePriceRecurring::new(interval))
            .lookup_key(lookup_key)
            .customize()
            .request_strategy(idempotent(&format!("price-{lookup_key}"))?)
            .send(&self.client)
            .await
            .map_err(upstream)
    }

    pub async fn activate_price(&self, price_id: &str) -> Result<()> {
        UpdatePrice::new(price_id)
            .active(true)
            .send(&self.client)
            .await
            .map_err(upstream)?;
        Ok(())
    }

    /// New checkouts stop using the price; subscriptions on it continue.
    pub async fn deactivate_price(&self, price_id: &str) -> Result<()> {
        UpdatePrice::new(price_id)
            .active(false)
            .send(&self.client)
            .await
            .map_err(upstream)?;
        Ok(())
    }

    pub async fn create_customer(
        &self,
        supporter_id: i64,
        email: &str,
        name: &str,
    ) -> Result<String> {
        let metadata = HashMap::from([(
            "patronage_supporter_id".to_owned(),
            supporter_id.to_string(),
        )]);
        let customer = CreateCustomer::new()
            .email(email)
            .name(name)
            .metadata(metadata)
            .customize()
            .request_strategy(idempotent(&format!("customer-{supporter_id}"))?)
            .send(&self.client)
            .await
            .map_err(upstream)?;
        Ok(customer.id.to_string())
    }

    /// A subscription billed by emailed invoice (sponsors with payment
    /// terms). Returns its id and the hosted invoice's URL.
    pub async fn create_invoiced_subscription(
        &self,
        idempotency_key: &str,
        customer: &str,
        price: &str,
        days_until_due: u32,
        metadata: HashMap<String, String>,
    ) -> Result<(String, String)> {
        let mut item = CreateSubscriptionItems::new();
        item.price = Some(price.to_owned());
        let subscription = CreateSubscription::new()
            .customer(customer)
            .items(vec![item])
            .collection_method(stripe_shared::SubscriptionCollectionMethod::SendInvoice)
            .days_until_due(days_until_due)
            .metadata(metadata)
            .expand(vec!["latest_invoice".to_owned()])
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.client)
            .await
            .map_err(upstream)?;
        let url = subscription
            .latest_invoice
            .and_then(|i| i.into_object())
            .and_then(|i| i.hosted_invoice_url)
            .ok_or_else(|| Error::provider("invoice without a hosted URL"))?;
        Ok((subscription.id.to_string(), url))
    }

    /// Creates a Checkout Session; returns its id and URL.
    pub async fn create_checkout_session(
        &self,
        s: &SessionRequest<'_>,
    ) -> Result<(String, String)> {
        let mut item = CreateCheckoutSessionLineItems::new();
        item.quantity = Some(1);
        match &s.line {
            Line::Price(id) => item.price = Some((*id).to_owned()),
            Line::Custom {
                amount_minor,
                currency,
                product,
                product_name,
                interval,
            } => {
                let mut data =
                    CreateCheckoutSessionLineItemsPriceData::new(stripe_currency(*currency)?);
                data.unit_amount = Some(*amount_minor);
                data.product = product.map(str::to_owned);
                data.product_data = product_name.map(ProductData::new);
                data.recurring = interval.map(|i| {
                    CreateCheckoutSessionLineItemsPriceDataRecurring::new(match i {
                        Interval::Month => {
                            CreateCheckoutSessionLineItemsPriceDataRecurringInterval::Month
                        }
                        Interval::Year => {
                            CreateCheckoutSessionLineItemsPriceDataRecurringInterval::Year
                        }
                    })
                });
                item.price_data = Some(data);
            }
        }
        let mut req = CreateCheckoutSession::new()
            .customer(s.customer)
            .client_reference_id(s.client_reference_id.clone())
            .metadata(s.metadata.clone())
            .line_items(vec![item])
            .success_url(s.success_url)
            .cancel_url(s.cancel_url);
        if s.subscription {
            let mut data = CreateCheckoutSessionSubscriptionData::new();
            data.metadata = Some(s.metadata.clone());
            req = req
                .mode(CheckoutSessionMode::Subscription)
                .subscription_data(data);
        } else {
            let mut data = CreateCheckoutSessionPaymentIntentData::new();
            data.metadata = Some(s.metadata.clone());
            req = req
                .mode(CheckoutSessionMode::Payment)
                .payment_intent_data(data);
        }
        let session = req
            .customize()
            .request_strategy(idempotent(&s.idempotency_key)?)
            .send(&self.client)
            .await
            .map_err(upstream)?;
        let url = session
            .url
            .ok_or_else(|| Error::provider("Checkout Session without a URL"))?;
        Ok((session.id.to_string(), url))
    }

    pub async fn portal_url(&self, customer_id: &str, return_url: &str) -> Result<String> {
        let session = CreateBillingPortalSession::new()
            .customer(customer_id)
            .return_url(return_url)
            .send(&self.client)
            .await
            .map_err(upstream)?;
        Ok(session.url)
    }

    pub async fn subscription(&self, id: &str) -> Result<Subscription> {
        RetrieveSubscription::new(id)
            .send(&self.client)
            .await
            .map_err(upstream)
    }

    /// One page of subscriptions in every status, oldest page last.
    pub async fn subscriptions_page(
        &self,
        starting_after: Option<&str>,
    ) -> Result<(Vec<Subscription>, bool)> {
        let mut request = ListSubscription::new()
            .status(ListSubscriptionStatus::All)
            .limit(100);
        if let Some(after) = starting_after {
            request = request.starting_after(after);
        }
        let list = request.send(&self.client).await.map_err(upstream)?;
        Ok((list.data, list.has_more))
    }

    /// One page of events created at or after `created_from`, newest first,
    /// each as its raw JSON: the same bytes a webhook would have carried,
    /// so a missed event is applied exactly as a delivered one.
    pub async fn events_page(
        &self,
        created_from: i64,
        starting_after: Option<&str>,
    ) -> Result<(Vec<serde_json::Value>, bool)> {
        #[derive(serde::Serialize)]
        struct Created {
            gte: i64,
        }
        #[derive(serde::Serialize)]
        struct Query<'a> {
            limit: i64,
            created: Created,
            #[serde(skip_serializing_if = "Option::is_none")]
            starting_after: Option<&'a str>,
        }
        #[derive(serde::Deserialize)]
        struct Page {
            data: Vec<serde_json::Value>,
            has_more: bool,
        }
        let raw: miniserde::json::Value = RequestBuilder::new(StripeMethod::Get, "/events")
            .query(&Query {
                limit: 100,
                created: Created { gte: created_from },
                starting_after,
            })
            .customize()
            .send(&self.client)
            .await
            .map_err(upstream)?;
        let page: Page = serde_json::from_str(&miniserde::json::to_string(&raw))
            .map_err(|e| Error::provider(format!("unreadable event list: {e}")))?;
        Ok((page.data, page.has_more))
    }

    /// Ends a subscription now, or at the end of the paid period.
    pub async fn cancel_subscription(&self, id: &str, at_period_end: bool) -> Result<Subscription> {
        if at_period_end {
            UpdateSubscription::new(id)
                .cancel_at_period_end(true)
                .send(&self.client)
                .await
                .map_err(upstream)
        } else {
            CancelSubscription::new(id)
                .send(&self.client)
                .await
                .map_err(upstream)
        }
    }

    /// The payment intent that paid an invoice, if Stripe collected it.
    pub async fn invoice_payment_intent(&self, invoice_id: &str) -> Result<Option<String>> {
        let payments = ListInvoicePayment::new()
            .invoice(invoice_id)
            .status(ListInvoicePaymentStatus::Paid)
            .send(&self.client)
            .await
            .map_err(upstream)?;
        Ok(payments
            .data
            .into_iter()
            .find_map(|p| p.payment.payment_intent.map(|pi| pi.id().to_string())))
    }

    /// The charge behind a payment intent and the fee Stripe kept on it.
    pub async fn charge_fee(&self, payment_intent: &str) -> Result<Option<ChargeFee>> {
        // Built by hand: async-stripe-core's `payment_intent` requests are
        // 51,000 generated lines, for this one call.
        #[derive(serde::Serialize)]
        struct Expand {
            expand: &'static [&'static str],
        }
        let pi: PaymentIntent = RequestBuilder::new(
            StripeMethod::Get,
            format!("/payment_intents/{payment_intent}"),
        )
        .query(&Expand {
            expand: &["latest_charge.balance_transaction"],
        })
        .customize()
        .send(&self.client)
        .await
        .map_err(upstream)?;
        let Some(charge) = pi.latest_charge.and_then(|c| c.into_object()) else {
            return Ok(None);
        };
        let fee = charge
            .balance_transaction
            .and_then(|bt| bt.into_object())
            .map(|bt| bt.fee);
        Ok(Some(ChargeFee {
            charge_id: charge.id.to_string(),
            fee_minor: fee,
        }))
    }

    /// How much of a charge is refunded already, by Stripe's account.
    pub async fn charge_refunded_amount(&self, charge_id: &str) -> Result<i64> {
        let charge = stripe_core::charge::RetrieveCharge::new(charge_id)
            .send(&self.client)
            .await
            .map_err(upstream)?;
        Ok(charge.amount_refunded)
    }

    /// The customer a charge was made to, if any.
    pub async fn charge_customer(&self, charge_id: &str) -> Result<Option<String>> {
        let charge = stripe_core::charge::RetrieveCharge::new(charge_id)
            .send(&self.client)
            .await
            .map_err(upstream)?;
        Ok(charge.customer.map(|c| c.id().to_string()))
    }

    pub async fn refunds_of_charge(&self, charge_id: &str) -> Result<Vec<Refund>> {
        let list = ListRefund::new()
            .charge(charge_id)
            .limit(100)
            .send(&self.client)
            .await
            .map_err(upstream)?;
        Ok(list.data)
    }

    /// Refunds all or part of a payment. The key makes a retried request
    /// refund once.
    pub async fn refund(
        &self,
        payment_intent: &str,
        amount_minor: Option<i64>,
        key: &str,
    ) -> Result<Refund> {
        let mut req = CreateRefund::new().payment_intent(payment_intent);
        if let Some(a) = amount_minor {
            req = req.amount(a);
        }
        req.customize()
            .request_strategy(idempotent(key)?)
            .send(&self.client)
            .await
            .map_err(upstream)
    }
}

/// What is being sold in a Checkout Session.
#[derive(Debug, Clone)]
pub enum Line<'a> {
    /// A catalogue price (a tier at its listed amount).
    Price(&'a str),
    /// An amount chosen by the supporter: pay what you want, or a gift.
    Custom {
        amount_minor: i64,
        currency: Currency,
        /// The tier's product; gifts name one instead.
        product: Option<&'a str>,
        product_name: Option<&'a str>,
        interval: Option<Interval>,
    },
}

#[derive(Debug, Clone)]
pub struct SessionRequest<'a> {
    pub idempotency_key: String,
    pub customer: &'a str,
    pub client_reference_id: String,
    pub metadata: HashMap<String, String>,
    pub line: Line<'a>,
    /// Subscription mode (recurring) or payment mode (one-time).
    pub subscription: bool,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
}
