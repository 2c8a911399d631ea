/*
 * A throughput run in the manner of RabbitMQ's PerfTest, written on the
 * official Java client (com.rabbitmq:amqp-client): one producer connection
 * publishing persistent messages of a given size with publisher confirms
 * (at most `window` unconfirmed), one consumer connection with manual acks
 * and a prefetch of `window`, through one durable queue, both at once.
 * The equivalent PerfTest flags: -x 1 -y 1 -c <window> -q <window> -s <size>
 * -f persistent -C <count> -u <queue>.
 *
 *   java AmqpThroughput <amqp-url> <count> <size> <window>
 *
 * Prints "RATE <messages per second>" once every message was consumed, and
 * deletes its queue.
 */
import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Envelope;
import com.rabbitmq.client.MessageProperties;
import java.util.UUID;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

public class AmqpThroughput {
  public static void main(String[] args) throws Exception {
    String url = args[0];
    int count = Integer.parseInt(args[1]);
    int size = Integer.parseInt(args[2]);
    int window = Integer.parseInt(args[3]);
    ConnectionFactory factory = new ConnectionFactory();
    factory.setUri(url);
    String queue = "bench-java-" + UUID.randomUUID().toString().substring(0, 8);
    try (Connection pubConn = factory.newConnection("perf-producer"); Connection subConn = factory.newConnection("perf-consumer")) {
      Channel pub = pubConn.createChannel();
      pub.queueDeclare(queue, true, false, false, null);
      Channel sub = subConn.createChannel();
      sub.basicQos(window);
      CountDownLatch consumed = new CountDownLatch(count);
      sub.basicConsume(queue, false, new DefaultConsumer(sub) {
        @Override
        public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties props, byte[] body) throws java.io.IOException {
          sub.basicAck(env.getDeliveryTag(), false);
          consumed.countDown();
        }
      });

      Semaphore inFlight = new Semaphore(window);
      ConcurrentSkipListSet<Long> unconfirmed = new ConcurrentSkipListSet<>();
      pub.confirmSelect();
      pub.addConfirmListener(
          (tag, multiple) -> settle(unconfirmed, inFlight, tag, multiple),
          (tag, multiple) -> {
            throw new IllegalStateException("message " + tag + " was nacked");
          });
      byte[] body = new byte[size];
      long started = System.nanoTime();
      for (int i = 0; i < count; i++) {
        inFlight.acquire();
        unconfirmed.add(pub.getNextPublishSeqNo());
        pub.basicPublish("", queue, MessageProperties.PERSISTENT_BASIC, body);
      }
      if (!consumed.await(10, TimeUnit.MINUTES)) throw new IllegalStateException("not every message was consumed within 10 minutes");
      double seconds = (System.nanoTime() - started) / 1e9;
      System.out.println("RATE " + Math.round(count / seconds));
      pub.queueDelete(queue);
    }
  }

  private static void settle(ConcurrentSkipListSet<Long> unconfirmed, Semaphore inFlight, long tag, boolean multiple) {
    if (multiple) {
      var head = unconfirmed.headSet(tag, true);
      int n = head.size();
      head.clear();
      inFlight.release(n);
    } else if (unconfirmed.remove(tag)) {
      inFlight.release();
    }
  }
}
