// The RabbitMQ Java client (com.rabbitmq:amqp-client), unchanged, against an AMQP URL given as
// the first argument. Prints one line per observation, "name=value", for the test to compare.
import com.rabbitmq.client.*;
import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.concurrent.*;

public class JavaClientScenario {
  static void out(String k, Object v) {
    System.out.println(k + "=" + v);
  }

  public static void main(String[] args) throws Exception {
    String url = args[0];
    ConnectionFactory f = new ConnectionFactory();
    f.setUri(url);
    f.setAutomaticRecoveryEnabled(false);
    try (Connection conn = f.newConnection("java-scenario")) {
      out("server.product", conn.getServerProperties().get("product"));
      Channel ch = conn.createChannel();
      ch.confirmSelect();
      String q = ch.queueDeclare("", false, true, false, null).getQueue();
      out("serverNamed", q.startsWith("amq.gen-"));
      ch.basicPublish("", q, MessageProperties.PERSISTENT_TEXT_PLAIN, "hello".getBytes(StandardCharsets.UTF_8));
      ch.waitForConfirmsOrDie(10_000);
      GetResponse g = ch.basicGet(q, false);
      out("get.body", new String(g.getBody(), StandardCharsets.UTF_8));
      out("get.deliveryMode", g.getProps().getDeliveryMode());
      ch.basicNack(g.getEnvelope().getDeliveryTag(), false, true);
      GetResponse again = ch.basicGet(q, true);
      out("get.redelivered", again.getEnvelope().isRedeliver());

      // Mandatory returns.
      CompletableFuture<Integer> returned = new CompletableFuture<>();
      ch.addReturnListener(r -> returned.complete(r.getReplyCode()));
      ch.exchangeDeclare("java-topic", BuiltinExchangeType.TOPIC, false, true, null);
      ch.basicPublish("java-topic", "no.route", true, null, "lost".getBytes(StandardCharsets.UTF_8));
      out("return.replyCode", returned.get(10, TimeUnit.SECONDS));

      // Dead-lettering: x-death as Java reads it (count a Long, time a Date).
      ch.exchangeDeclare("java-dlx", BuiltinExchangeType.FANOUT, false, true, null);
      String dlq = ch.queueDeclare("", false, true, false, null).getQueue();
      ch.queueBind(dlq, "java-dlx", "");
      Map<String, Object> qargs = new HashMap<>();
      qargs.put("x-dead-letter-exchange", "java-dlx");
      String work = ch.queueDeclare("", false, true, false, qargs).getQueue();
      ch.basicPublish("", work, null, "job".getBytes(StandardCharsets.UTF_8));
      ch.waitForConfirmsOrDie(10_000);
      ch.basicQos(10);
      CompletableFuture<Long> tagF = new CompletableFuture<>();
      ch.basicConsume(work, false, new DefaultConsumer(ch) {
        @Override
        public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties p, byte[] body) {
          tagF.complete(env.getDeliveryTag());
        }
      });
      ch.basicReject(tagF.get(10, TimeUnit.SECONDS), false);
      GetResponse dead = null;
      for (int i = 0; i < 3000 && dead == null; i++) {
        dead = ch.basicGet(dlq, true);
        if (dead == null) Thread.sleep(10);
      }
      @SuppressWarnings("unchecked")
      List<Map<String, Object>> deaths = (List<Map<String, Object>>) dead.getProps().getHeaders().get("x-death");
      Map<String, Object> d = deaths.get(0);
      out("xdeath.count", d.get("count") + " " + d.get("count").getClass().getSimpleName());
      out("xdeath.reason", d.get("reason"));
      out("xdeath.time", d.get("time").getClass().getSimpleName());

      // Transactions.
      Channel tx = conn.createChannel();
      tx.txSelect();
      tx.basicPublish("", q, null, "t".getBytes(StandardCharsets.UTF_8));
      out("tx.beforeCommit", tx.queueDeclarePassive(q).getMessageCount());
      tx.txCommit();
      out("tx.afterCommit", tx.queueDeclarePassive(q).getMessageCount());

      // A channel error: passive declare of a missing queue.
      Channel bad = conn.createChannel();
      try {
        bad.queueDeclarePassive("java-missing");
        out("passive.missing", "no error");
      } catch (java.io.IOException e) {
        ShutdownSignalException s = (ShutdownSignalException) e.getCause();
        AMQP.Channel.Close close = (AMQP.Channel.Close) s.getReason();
        out("passive.missing", close.getReplyCode() + " " + close.getReplyText());
      }
    }
    ConnectionFactory wrong = new ConnectionFactory();
    wrong.setUri(url);
    wrong.setPassword("wrong");
    try {
      wrong.newConnection().close();
      out("wrongPassword", "connected");
    } catch (AuthenticationFailureException e) {
      out("wrongPassword", "AuthenticationFailureException");
    }
  }
}
