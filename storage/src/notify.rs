//! A tiny single-threaded broadcast notification: waiters park until the next
//! `notify_all`. No allocation per wait once the waker list has grown to its working size.

use std::{
    cell::{Cell, RefCell},
    future::Future,
    pin::Pin,
    task::{Context, Poll, Waker},
};

#[derive(Default)]
pub(crate) struct Notify {
    generation: Cell<u64>,
    wakers: RefCell<Vec<Waker>>,
}

impl Notify {
    /// A future that resolves at the first `notify_all` after this call. Create it BEFORE
    /// releasing the state borrow that decided to wait, so no notification is missed.
    pub(crate) fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            generation: self.generation.get(),
            registered: false,
        }
    }

    pub(crate) fn notify_all(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        let mut list = std::mem::take(&mut *self.wakers.borrow_mut());
        if list.is_empty() {
            *self.wakers.borrow_mut() = list;
            return;
        }
        for waker in list.drain(..) {
            waker.wake();
        }
        // Hand the (now empty) allocation back unless waiters re-registered meanwhile.
        let mut current = self.wakers.borrow_mut();
        if current.is_empty() {
            *current = list;
        }
    }
}

pub(crate) struct Notified<'a> {
    notify: &'a Notify,
    generation: u64,
    registered: bool,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.generation.get() != self.generation {
            return Poll::Ready(());
        }
        if !self.registered {
            // A glommio task's waker is stable, so registering once per generation suffices.
            self.notify.wakers.borrow_mut().push(cx.waker().clone());
            self.registered = true;
        }
        Poll::Pending
    }
}
