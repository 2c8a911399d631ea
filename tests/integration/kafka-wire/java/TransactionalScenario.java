import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java client's transactional producer and read_committed consumer, as an
 * application uses them: an aborted transaction, a committed one with the
 * group's offsets sent in it, then a second producer with the same
 * transactional.id fencing the first. Prints what it observed, one line each.
 * Arguments: bootstrap servers, topic.
 */
public class TransactionalScenario {
  static KafkaProducer<String, String> producer(String bootstrap, String txnId) {
    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    return new KafkaProducer<>(p);
  }

  static List<String> read(String bootstrap, String topic, String isolation, int want) {
    Properties c = new Properties();
    c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
    c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    List<String> out = new ArrayList<>();
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
      TopicPartition tp = new TopicPartition(topic, 0);
      consumer.assign(Collections.singletonList(tp));
      consumer.seekToBeginning(Collections.singletonList(tp));
      long deadline = System.currentTimeMillis() + 60_000;
      while (out.size() < want && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) out.add(r.value());
      }
      // Whatever else is there up to the end (the last stable offset for read_committed).
      for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) out.add(r.value());
      System.out.println(isolation + "-position:" + consumer.position(tp));
    }
    return out;
  }

  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    String topic = args[1];
    try (KafkaProducer<String, String> producer = producer(bootstrap, "java-txn")) {
      producer.initTransactions();
      producer.beginTransaction();
      for (int i = 0; i < 3; i++) producer.send(new ProducerRecord<>(topic, 0, "k", "aborted-" + i));
      // Sent before the abort (the client drops batches not yet sent when it aborts).
      producer.flush();
      producer.abortTransaction();
      producer.beginTransaction();
      for (int i = 0; i < 3; i++) producer.send(new ProducerRecord<>(topic, 0, "k", "committed-" + i));
      producer.sendOffsetsToTransaction(Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(42)), new ConsumerGroupMetadata("java-txn-group"));
      producer.commitTransaction();
      System.out.println("committed");

      producer.beginTransaction();
      producer.send(new ProducerRecord<>(topic, 0, "k", "zombie-0")).get();
      try (KafkaProducer<String, String> successor = producer(bootstrap, "java-txn")) {
        successor.initTransactions();
        System.out.println("successor-initialised");
        try {
          producer.commitTransaction();
          System.out.println("zombie-committed");
        } catch (Exception e) {
          System.out.println("zombie-refused:" + e.getClass().getSimpleName());
        }
        successor.beginTransaction();
        successor.send(new ProducerRecord<>(topic, 0, "k", "successor-0"));
        successor.commitTransaction();
      }
    } catch (Exception e) {
      // The fenced producer may fail again on close; what matters was printed.
      System.out.println("producer-closed:" + e.getClass().getSimpleName());
    }
    System.out.println("read_committed:" + String.join(",", read(bootstrap, topic, "read_committed", 4)));
    System.out.println("read_uncommitted:" + String.join(",", read(bootstrap, topic, "read_uncommitted", 8)));
  }
}
