"""pika (Debian's python3-pika), unchanged, against the AMQP URL given as the
first argument. Prints one line per observation, name=value."""
import sys
import time

import pika


def out(k, v):
    print(f"{k}={v}", flush=True)


params = pika.URLParameters(sys.argv[1])
conn = pika.BlockingConnection(params)
ch = conn.channel()
ch.confirm_delivery()
q = ch.queue_declare(queue="", exclusive=True).method.queue
out("serverNamed", q.startswith("amq.gen-"))
ch.basic_publish("", q, b"hello", pika.BasicProperties(delivery_mode=2, headers={"n": 7, "s": "x"}))
m, props, body = ch.basic_get(q)
out("get.body", body.decode())
out("get.headers", sorted(props.headers.items()))
out("get.messageCount", m.message_count)
ch.basic_nack(m.delivery_tag, requeue=True)
m2, _, _ = ch.basic_get(q, auto_ack=True)
out("get.redelivered", m2.redelivered)

ch.exchange_declare("pika-dlx", "fanout", auto_delete=True)
dlq = ch.queue_declare(queue="", exclusive=True).method.queue
ch.queue_bind(dlq, "pika-dlx")
work = ch.queue_declare(queue="", exclusive=True, arguments={"x-dead-letter-exchange": "pika-dlx"}).method.queue
ch.basic_publish("", work, b"job")
ch.basic_qos(prefetch_count=5)
got = []
ch.basic_consume(work, lambda c, method, p, b: got.append(method.delivery_tag))
while not got:
    conn.process_data_events(time_limit=0.05)
ch.basic_reject(got[0], requeue=False)
dead = None
for _ in range(3000):
    dead = ch.basic_get(dlq, auto_ack=True)
    if dead[0]:
        break
    time.sleep(0.01)
d = dead[1].headers["x-death"][0]
out("xdeath", (d["count"], d["reason"], type(d["time"]).__name__))

try:
    ch.basic_publish("pika-missing", "k", b"x")
    out("missingExchange", "no error")
except pika.exceptions.ChannelClosedByBroker as e:
    out("missingExchange", f"{e.reply_code} {e.reply_text}")
conn.close()

try:
    pika.BlockingConnection(pika.URLParameters(sys.argv[1].replace("guest:guest", "guest:wrong"))).close()
    out("wrongPassword", "connected")
except pika.exceptions.ProbableAuthenticationError:
    out("wrongPassword", "ProbableAuthenticationError")
except pika.exceptions.AMQPConnectionError as e:
    out("wrongPassword", type(e).__name__)
